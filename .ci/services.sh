#!/usr/bin/env bash
# Sourced by .ci/run: installs (Debian packages) and starts the real services the runner tests use:
# a throw-away PostgreSQL cluster on 127.0.0.1, the Prometheus and Alertmanager binaries (the tests start their own
# servers), docker-compose (the compose file is validated, no engine runs) and systemd-analyze (the units are verified).
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
need=()
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need+=(postgresql)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGDATA=$(mktemp -d /tmp/tradelab-pg.XXXXXX)
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PGPASS="tl-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
AS=""
if [ "$(id -u)" = 0 ]; then chown postgres: "$PGDATA"; AS="runuser -u postgres --"; fi
echo "$PGPASS" > "$PGDATA/.pw"
$AS "$PGBIN/initdb" -D "$PGDATA/data" -U tradelab --auth=scram-sha-256 --pwfile="$PGDATA/.pw" >/dev/null
$AS "$PGBIN/pg_ctl" -D "$PGDATA/data" -l "$PGDATA/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA -c fsync=off" start >/dev/null
PGPASSWORD="$PGPASS" "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U tradelab tradelab_test
stop_services() { $AS "$PGBIN/pg_ctl" -D "$PGDATA/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$PGDATA"; }
trap stop_services EXIT

export TRADELAB_TEST_PG_URL="postgresql://tradelab:$PGPASS@127.0.0.1:$PGPORT/tradelab_test"
export TRADELAB_REQUIRE_PG=1 TRADELAB_REQUIRE_PROMETHEUS=1 TRADELAB_REQUIRE_BROWSER=1 TRADELAB_REQUIRE_COMPOSE=1
