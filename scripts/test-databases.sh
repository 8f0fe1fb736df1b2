# Sourced by `make test`: point the tests at the local PostgreSQL, MariaDB and Redis servers when
# they answer and no URL was given. .ci/run starts the servers first, so there they always run.
if [ -z "${CRM_TEST_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
  export CRM_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/test"
fi
if [ -z "${CRM_TEST_MYSQL_URL:-}" ] && command -v mariadb-admin >/dev/null && mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
  export CRM_TEST_MYSQL_URL="mysql+pymysql://root@127.0.0.1:3306/test"
fi
if [ -z "${CRM_TEST_REDIS_URL:-}" ] && command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  export CRM_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
fi
echo "job queues under test: sqlite${CRM_TEST_REDIS_URL:+ redis}"
echo "databases under test: sqlite${CRM_TEST_POSTGRES_URL:+ postgresql}${CRM_TEST_MYSQL_URL:+ mariadb}"
