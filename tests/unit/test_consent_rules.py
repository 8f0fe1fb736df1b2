"""The consent ledger's pure parts (decision 0047): the form's own checks, the do-not-contact key, the import's
consent values, and the state a latest entry gives."""

from __future__ import annotations

import datetime as dt

from crm_core.importing.fields import field_spec
from crm_core.importing.prepare import choice_lookup
from crm_core.queries.consent import ConsentState
from crm_core.services.consent import ConsentInput, _checked_form, dnc_address


def test_the_form_needs_a_basis_for_a_grant_and_proof_for_a_form_or_a_manual_entry() -> None:
    errors, _ = _checked_form(ConsentInput(1, "email", "grant", proof_kind="form"))
    assert errors == {"basis": ("consent.error.basis_required", {}),
                      "proof": ("consent.error.proof_required_form", {})}
    errors, proof = _checked_form(ConsentInput(1, "wechat", "withdraw", proof_kind="import", proof="  list 7 "))
    assert (errors, proof) == ({}, "list 7")
    errors, _ = _checked_form(ConsentInput(1, "email", "grant", basis="consent", proof_kind="bounce"))
    assert errors == {"proof_kind": ("validation.choice", {})}  # written by the bounce handler, never typed
    errors, _ = _checked_form(ConsentInput(1, "email", "withdraw", proof_kind="manual", proof="x\x00"))
    assert errors["proof"][0] == "imports.rule.hidden_characters"


def test_a_do_not_contact_address_is_keyed_as_the_ledger_keys_it() -> None:
    assert dnc_address("all", " Zhang@Example.CN ") == "zhang@example.cn"
    assert dnc_address("all", "138 0013 8000") == "+8613800138000"
    assert dnc_address("sms", "138-0013-8000") == "+8613800138000"
    assert dnc_address("all", " wxid_01 ") == "wxid_01"
    assert dnc_address("all", "   ") is None


def test_an_import_reads_consent_in_common_words_and_both_languages() -> None:
    spec = field_spec("customers", "email_consent")
    assert spec is not None
    lookup = choice_lookup(spec)
    assert {word: lookup[word] for word in ("yes", "opt-out", "合同", "正当利益", "legitimate interest", "同意",
                                            "none")} == {
        "yes": "consent", "opt-out": "withdrawn", "合同": "contract", "正当利益": "legitimate_interest",
        "legitimate interest": "legitimate_interest", "同意": "consent", "none": "none"}
    assert field_spec("contacts", "email_consent_date") is not None


def test_the_state_of_an_address() -> None:
    def state(action: str | None, basis: str | None, listed: bool = False) -> str:
        return ConsentState(None, "x", "email", "a@b.cn", action, basis, dt.datetime(2026, 1, 1), "form", "", None,
                            listed).state

    assert [state("grant", "contract"), state("withdraw", None), state(None, None),
            state("grant", "consent", listed=True)] == ["granted", "withdrawn", "none", "do_not_contact"]
