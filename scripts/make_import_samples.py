"""Write the sample import files in data/samples/ (run: python scripts/make_import_samples.py).

- customers_dirty_gbk.csv  GBK, Chinese headers: a typo in a stage, a bad email, an unknown owner,
                           a duplicate, a blank and a malformed revenue, a script tag, a formula
- orders_dirty_gbk.csv     GBK: lines of orders for the customers above, an unknown product,
                           a blank quantity, a price with a currency sign, dates in several formats
- products.xlsx            an Excel workbook: numbers, a duplicated SKU and a formula cell
- customers_clean.csv      UTF-8, English headers, every row valid
- customers_mapping.json   a mapping for the CLI: columns, stage values, match keys
"""

from __future__ import annotations

import json
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"

CUSTOMERS_DIRTY = [
    ["客户名称", "电话", "邮箱", "负责人", "阶段", "行业", "城市", "年营收"],
    ["深圳红隼电子有限公司", "0755-8888 6666", "sales@hongsun.example.cn", "", "潜客", "电子", "深圳", "1,200,000"],
    ["杭州青禾茶业", "１３８００１３８０００", "qinghe@example.cn", "", "意向客户", "食品", "杭州", ""],
    ["北京远航物流", "010-6666 7777", "yuanhang@example", "", "成交客户", "物流", "北京", "￥350,000"],
    ["上海明珠贸易", "021-5555 1234", "mingzhu@example.cn", "李雷", "潜客", "贸易", "上海", "80万"],
    ["广州南粤科技", "020-3333 2222", "nanyue@example.cn", "", "意象客户", "软件", "广州", "500000"],
    ["成都天府餐饮", "028-8765 4321", "tianfu@example.cn", "", "Engaging", "餐饮", "成都", "120000"],
    ["杭州青禾茶业（重复）", "13800138000", "QINGHE@example.cn", "", "意向客户", "食品", "杭州", ""],
    ["<script>alert('x')</script>", "13900000000", "xss@example.cn", "", "潜客", "未知", "", ""],
    ['=HYPERLINK("http://evil.example","点我")', "13900000001", "formula@example.cn", "", "潜客", "", "", ""],
    ["武汉长江制造", "027-8888 0000", "changjiang@example.cn", "", "流失客户", "制造", "武汉", "2,000,000"],
]

ORDERS_DIRTY = [
    ["订单号", "客户", "产品", "数量", "单价", "下单日期", "状态"],
    ["SO-2026-001", "深圳红隼电子有限公司", "KST-1001", "10", "", "2026-11-02", "已确认"],
    ["SO-2026-001", "深圳红隼电子有限公司", "KST-1002", "2", "￥1,280.00", "2026-11-02", "已确认"],
    ["SO-2026-002", "杭州青禾茶业", "KST-1003", "", "99", "2026/11/5", "已发货"],
    ["SO-2026-003", "北京远航物流", "神秘产品", "1", "500", "2026年11月8日", "已确认"],
    ["SO-2026-004", "不存在的客户", "KST-1001", "3", "100", "11/09/2026", "草稿"],
    ["SO-2026-005", "武汉长江制造", "KST-1004", "abc", "100", "2026-11-10 14:30", "已取消"],
]

CLEAN = [
    ["Company Name", "Email", "Phone", "Lifecycle Stage", "Industry", "Region", "Tags"],
    [
        "Kestrel Demo Alpha Ltd",
        "alpha@kestrel-demo.example",
        "+1 415 555 0101",
        "Prospect",
        "Software",
        "West",
        "vip, trial",
    ],
    ["Kestrel Demo Beta GmbH", "beta@kestrel-demo.example", "+49 30 555 0102", "Intent", "Manufacturing", "EU", ""],
    [
        "Kestrel Demo Gamma Inc",
        "gamma@kestrel-demo.example",
        "+1 212 555 0103",
        "Customer",
        "Retail",
        "East",
        "key account",
    ],
    ["Kestrel Demo Delta Co", "delta@kestrel-demo.example", "+44 20 5555 0104", "Churned", "Logistics", "UK", ""],
]


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> None:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))


def write_products_xlsx(path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "产品"
    sheet.append(["SKU", "Product Name", "Unit Price", "Currency", "Active"])
    sheet.append(["KS-IMP-001", "Kestrel 数据线 USB-C", 39.9, "CNY", "是"])
    sheet.append(["KS-IMP-002", "Kestrel 无线鼠标", 129, "CNY", "是"])
    sheet.append(["KS-IMP-003", "Kestrel 机械键盘", 499, "CNY", "否"])
    sheet.append(["KS-IMP-002", "Kestrel 无线鼠标 Pro", 199, "CNY", "是"])
    sheet.append(["KS-IMP-004", "Kestrel 显示器支架", "=B2*2", "CNY", "是"])
    sheet.append(["KS-IMP-005", 'Kestrel Monitor 27"', 1899, "USD", "yes"])
    workbook.save(path)


def main() -> None:
    SAMPLES.mkdir(parents=True, exist_ok=True)
    write_csv(SAMPLES / "customers_dirty_gbk.csv", CUSTOMERS_DIRTY, "gbk")
    write_csv(SAMPLES / "orders_dirty_gbk.csv", ORDERS_DIRTY, "gbk")
    write_csv(SAMPLES / "customers_clean.csv", CLEAN, "utf-8")
    write_products_xlsx(SAMPLES / "products.xlsx")
    mapping = {
        "columns": {
            "客户名称": "name",
            "电话": "phone",
            "邮箱": "email",
            "负责人": "owner",
            "阶段": "lifecycle_stage",
            "行业": "industry",
            "城市": "region",
        },
        "values": {"阶段": {"意象客户": "intent", "Engaging": "intent"}},
        "match_on": ["email", "phone", "name"],
    }
    (SAMPLES / "customers_mapping.json").write_text(
        json.dumps(mapping, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print("\n".join(str(path) for path in sorted(SAMPLES.iterdir())))


if __name__ == "__main__":
    main()
