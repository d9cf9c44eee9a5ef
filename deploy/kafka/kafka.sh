#!/usr/bin/env bash
# A local single-node KRaft Apache Kafka for development, tests, CI and the demo.
#
#   deploy/kafka/kafka.sh up [--secured]             start in the background; return once a client can produce and consume
#   deploy/kafka/kafka.sh down [--secured] [--wipe]  stop it (and with --wipe delete its data and logs)
#   deploy/kafka/kafka.sh status [--secured]         say whether it runs
#   deploy/kafka/kafka.sh fetch                      only resolve the broker's jars from Maven Central into the cache
#
# The broker's jars come from Maven Central (org.apache.kafka:kafka_2.13, see pom.xml beside this
# file) into a cache under the user's home, so a second run needs no network. Both `up` and `down`
# are idempotent. Settings (environment):
#   STREAM_OD_KAFKA_DIR   data, logs and pid file      (default: <repo>/.kafka; secured: <repo>/.kafka-secured)
#   STREAM_OD_KAFKA_PORT  client port on 127.0.0.1     (default: 9092; secured: 9192)
#   STREAM_OD_KAFKA_CONTROLLER_PORT   KRaft controller (default: client port + 1)
#   STREAM_OD_CACHE       jar cache                     (default: ~/.cache/stream-od)
#   KAFKA_HEAP_OPTS       JVM heap                      (default: -Xms256m -Xmx1g)
#   KAFKA_GC_OPTS         JVM garbage collector          (default: -XX:+UseG1GC -XX:MaxGCPauseMillis=20)
#   PYTHON                interpreter with confluent-kafka for the readiness probe (default: python3)
#
# Secured mode (`--secured` after the command, or STREAM_OD_KAFKA_SECURED=1) is a second broker
# that can run beside the plain one, on its own ports and directory, locked down the way a
# production cluster is (docs/security.md): clients authenticate with SASL/SCRAM-SHA-512 over TLS
# (SASL_SSL); the KRaft StandardAuthorizer denies whatever no ACL allows
# (allow.everyone.if.no.acl.found=false); the broker's own listeners (controller, inter-broker)
# take only the broker's certificate (mutual TLS, principal User:broker). At its first start it
# makes a CA and the broker's certificate with keytool (part of the JDK), and formats the storage
# with the SCRAM user `admin`, a super user. More settings:
#   STREAM_OD_KAFKA_BROKER_PORT     inter-broker listener (default: client port + 2)
#   STREAM_OD_KAFKA_ADMIN_PASSWORD  admin's password, taken at the first start (default: random)
# and files in its directory, for clients:
#   tls/ca.pem            the CA certificate (librdkafka: ssl.ca.location)
#   client.json           librdkafka settings of the admin user (the JSON STREAM_OD_KAFKA takes)
#   admin.properties      the same for Kafka's Java tools (kafka-acls.sh --command-config)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/pom.xml")"
CACHE="${STREAM_OD_CACHE:-$HOME/.cache/stream-od}"
LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
PYTHON="${PYTHON:-python3}"
READY_TIMEOUT_S="${STREAM_OD_KAFKA_READY_TIMEOUT_S:-120}"
SECURED="${STREAM_OD_KAFKA_SECURED:-0}"
WIPE=0

configure() {
  # Paths and ports, once the command line has said which broker (plain or secured) is meant.
  if [ "$SECURED" = 1 ]; then
    DIR="${STREAM_OD_KAFKA_DIR:-$REPO/.kafka-secured}"
    PORT="${STREAM_OD_KAFKA_PORT:-9192}"
  else
    DIR="${STREAM_OD_KAFKA_DIR:-$REPO/.kafka}"
    PORT="${STREAM_OD_KAFKA_PORT:-9092}"
  fi
  CONTROLLER_PORT="${STREAM_OD_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
  BROKER_PORT="${STREAM_OD_KAFKA_BROKER_PORT:-$((PORT + 2))}"
  PIDFILE="$DIR/kafka.pid"
  TLS="$DIR/tls"
  if [ "$SECURED" = 1 ]; then umask 077; fi  # keys and passwords: readable by this user only
}

say() { printf 'kafka: %s\n' "$*" >&2; }
die() { printf 'kafka: %s\n' "$*" >&2; exit 1; }

need_tools() {
  command -v java >/dev/null 2>&1 || die "Java is missing: install a JDK 17 or newer (Debian: apt-get install openjdk-17-jre-headless)."
  command -v mvn >/dev/null 2>&1 || [ -f "$LIBS/.complete" ] || die "Maven is missing: install it (Debian: apt-get install maven); it fetches the Kafka broker from Maven Central once."
}

fetch() {
  need_tools
  if [ -f "$LIBS/.complete" ]; then return 0; fi
  say "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $LIBS (once)"
  rm -rf "$LIBS" && mkdir -p "$LIBS"
  mvn -B -q -f "$HERE/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$LIBS" -DincludeScope=runtime >&2 \
    || die "could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION with Maven (is Maven Central reachable?)"
  touch "$LIBS/.complete"
}

running_pid() {
  # Prints the broker's pid if the pid file names a live Kafka process.
  [ -f "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q "kafka.Kafka" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

alive_pid() {
  # The pid file names a live process (while starting, it may not have exec'd the JVM yet).
  [ -s "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() {
  mkdir -p "$DIR/data" "$DIR/logs"
  if [ "$SECURED" = 1 ]; then secured_listeners; else plain_listeners; fi > "$DIR/server.properties"
  cat >> "$DIR/server.properties" <<EOF
log.dirs=$DIR/data
# A single broker: every internal topic has one replica, or transactions and groups never start.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
num.partitions=1
# Tests and the demo start consumers right away: do not wait for more members to join.
group.initial.rebalance.delay.ms=0
# Topics are created on purpose (tests, make demo, deploy/), never by a typo.
auto.create.topics.enable=false
# Model artifacts travel as one message on a compacted topic (see the registry): allow 10 MiB.
message.max.bytes=10485760
replica.fetch.max.bytes=10485760
log.retention.hours=24
EOF
}

plain_listeners() {
  cat <<EOF
# Generated by deploy/kafka/kafka.sh: one node that is both KRaft controller and broker.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
EOF
}

secured_listeners() {
  # Clients: SASL/SCRAM over TLS.  The broker's own connections (to its controller, and to
  # itself for transaction markers): mutual TLS with its certificate, principal User:broker.
  cat <<EOF
# Generated by deploy/kafka/kafka.sh --secured: one KRaft node, SASL_SSL for clients, ACLs.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=CLIENT://127.0.0.1:$PORT,BROKER://127.0.0.1:$BROKER_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=CLIENT://127.0.0.1:$PORT,BROKER://127.0.0.1:$BROKER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=BROKER
listener.security.protocol.map=CLIENT:SASL_SSL,BROKER:SSL,CONTROLLER:SSL
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/broker.p12
ssl.keystore.password=$(cat "$TLS/store.pass")
ssl.key.password=$(cat "$TLS/store.pass")
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem
ssl.client.auth=required
listener.name.client.ssl.client.auth=none
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,DEFAULT
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# Deny whatever no ACL allows; the broker (its certificate) and the admin user may do anything.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:broker;User:admin
EOF
}

random_secret() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

make_tls() {
  # A CA, and the broker's key and certificate signed by it (SAN 127.0.0.1 and localhost, for
  # server and client use), made once with keytool.  The CA's private key is deleted after
  # signing: nobody can make another certificate that this broker trusts.
  [ -s "$TLS/broker.p12" ] && [ -s "$TLS/ca.pem" ] && [ -s "$TLS/store.pass" ] && return 0
  command -v keytool >/dev/null 2>&1 || die "keytool is missing: it ships with the JDK (Debian: apt-get install openjdk-17-jre-headless)"
  say "making a CA and the broker's TLS certificate in $TLS (once)"
  rm -rf "$TLS" && mkdir -p "$TLS/.work"
  random_secret > "$TLS/store.pass"
  local work="$TLS/.work"
  kt -genkeypair -alias ca -keyalg EC -groupname secp256r1 -dname "CN=stream-od local CA" \
     -ext bc:c -ext ku:c=keyCertSign,cRLSign -validity 3650 -keystore "$work/ca.p12"
  kt -exportcert -rfc -alias ca -keystore "$work/ca.p12" -file "$TLS/ca.pem"
  kt -genkeypair -alias broker -keyalg EC -groupname secp256r1 -dname "CN=broker" \
     -validity 825 -keystore "$TLS/broker.p12"
  kt -certreq -alias broker -keystore "$TLS/broker.p12" -file "$work/broker.csr"
  kt -gencert -alias ca -keystore "$work/ca.p12" -infile "$work/broker.csr" -outfile "$work/broker.pem" \
     -rfc -validity 825 -ext san=ip:127.0.0.1,dns:localhost -ext eku=serverAuth,clientAuth
  kt -importcert -noprompt -alias ca -file "$TLS/ca.pem" -keystore "$TLS/broker.p12"
  kt -importcert -alias broker -file "$work/broker.pem" -keystore "$TLS/broker.p12"
  rm -rf "$work"
}

kt() {
  # keytool on a PKCS12 store whose password is in a file (never on a command line); the JVM
  # flags make each short run start in a third of the time.
  local cmd="$1"; shift
  keytool -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC "$cmd" -storetype PKCS12 -storepass:file "$TLS/store.pass" "$@" >> "$TLS/keytool.log" 2>&1 \
    || { tail -n 20 "$TLS/keytool.log" >&2; die "keytool $cmd failed (log: $TLS/keytool.log)"; }
}

admin_password() {
  # Chosen once (STREAM_OD_KAFKA_ADMIN_PASSWORD, else random) and kept with the data it belongs to.
  if [ ! -s "$DIR/admin.password" ]; then
    local pw="${STREAM_OD_KAFKA_ADMIN_PASSWORD:-$(random_secret)}"
    [[ "$pw" =~ ^[A-Za-z0-9._-]{8,}$ ]] || die "STREAM_OD_KAFKA_ADMIN_PASSWORD: use 8 or more letters, digits, '.', '_' or '-'"
    printf '%s\n' "$pw" > "$DIR/admin.password"
  fi
  cat "$DIR/admin.password"
}

write_client_files() {
  # The admin user's client settings: for librdkafka (stream-od, confluent-kafka) and for
  # Kafka's Java tools (kafka-acls.sh, kafka-topics.sh --command-config).
  local pw; pw="$(admin_password)"
  printf '{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin", "sasl.password": "%s", "ssl.ca.location": "%s"}\n' \
    "$pw" "$(json_escape "$TLS/ca.pem")" > "$DIR/client.json"
  cat > "$DIR/admin.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$pw";
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem
EOF
}

json_escape() { local s="${1//\\/\\\\}"; printf '%s' "${s//\"/\\\"}"; }

probe() {
  # The readiness probe (deploy/kafka/wait_ready.py) as the admin user when secured.
  local timeout="$1"
  local extra=()
  [ "$SECURED" = 1 ] && extra=(--config "$DIR/client.json")
  "$PYTHON" "$HERE/wait_ready.py" --bootstrap "127.0.0.1:$PORT" --timeout "$timeout" "${extra[@]}"
}

up() {
  need_tools
  if pid="$(running_pid)"; then
    say "already running (pid $pid) on 127.0.0.1:$PORT"
    wait_ready
    return 0
  fi
  if port_open "$PORT"; then
    # Another checkout's broker (or a user's own) already serves this port: use it if it works.
    if { [ "$SECURED" = 0 ] || [ -s "$DIR/client.json" ]; } && probe 15 2>/dev/null; then
      say "a broker not started from here already serves 127.0.0.1:$PORT: using it"
      return 0
    fi
    die "port $PORT is taken by a process that is not a working Kafka; stop it or set STREAM_OD_KAFKA_PORT"
  fi
  fetch
  if [ "$SECURED" = 1 ]; then
    mkdir -p "$DIR"
    printf '*\n' > "$DIR/.gitignore"  # keys and passwords: never committed
    make_tls
    write_client_files
  fi
  write_config
  local heap="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
  local gc="${KAFKA_GC_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20}"
  local jvm=(java $heap $gc -Djava.awt.headless=true
             -Dkafka.logs.dir="$DIR/logs" -Dlog4j2.configurationFile="$HERE/log4j2.yaml"
             -cp "$LIBS/*")
  if [ ! -f "$DIR/data/meta.properties" ]; then
    say "formatting storage in $DIR/data"
    local scram=()  # the admin user exists before the broker first starts
    [ "$SECURED" = 1 ] && scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(admin_password)]")
    "${jvm[@]}" kafka.tools.StorageTool format --ignore-formatted \
        -t "$("${jvm[@]}" kafka.tools.StorageTool random-uuid)" \
        -c "$DIR/server.properties" "${scram[@]}" > "$DIR/logs/format.log" 2>&1 \
      || { cat "$DIR/logs/format.log" >&2; die "formatting the storage failed (log: $DIR/logs/format.log)"; }
  fi
  say "starting Apache Kafka $KAFKA_VERSION on 127.0.0.1:$PORT (logs: $DIR/logs)"
  # The process writes its own pid and then becomes the JVM (exec keeps the pid), so the pid
  # file names the broker even if setsid had to fork, and never a shell that is still starting.
  rm -f "$PIDFILE"
  nohup setsid bash -c 'echo $$ > "$0"; exec "$@"' "$PIDFILE" "${jvm[@]}" kafka.Kafka \
      "$DIR/server.properties" > "$DIR/logs/stdout.log" 2>&1 < /dev/null &
  local waited=0
  until [ -s "$PIDFILE" ]; do
    [ $waited -lt 100 ] || die "the broker process did not start (logs: $DIR/logs)"
    sleep 0.1; waited=$((waited + 1))
  done
  wait_ready
}

wait_ready() {
  # Ready means: a client can create a topic, produce to it and consume it back.
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until port_open "$PORT"; do
    # Only a process that is gone has exited: a starting one may not show kafka.Kafka yet.
    alive_pid >/dev/null || { tail -n 30 "$DIR/logs/stdout.log" >&2 || true; die "the broker exited during start (logs: $DIR/logs)"; }
    [ $SECONDS -lt $deadline ] || die "the broker did not open port $PORT within ${READY_TIMEOUT_S}s (logs: $DIR/logs)"
    sleep 0.5
  done
  if "$PYTHON" -c "import confluent_kafka" 2>/dev/null; then
    probe "$((deadline - SECONDS))" \
      || die "the broker accepts connections but did not serve a produce/consume round trip (logs: $DIR/logs)"
  else
    say "no confluent-kafka in $PYTHON: checked the port only"
  fi
  say "ready on 127.0.0.1:$PORT"
  [ "$SECURED" = 0 ] || say "secured: SASL_SSL (SCRAM-SHA-512); admin client settings in $DIR/client.json"
}

down() {
  if pid="$(running_pid)"; then
    say "stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then say "did not stop in 30s: killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  else
    say "not running"
  fi
  rm -f "$PIDFILE"
  if [ "$WIPE" = 1 ]; then say "wiping $DIR"; rm -rf "$DIR"; fi
}

status() {
  if pid="$(running_pid)"; then say "running (pid $pid) on 127.0.0.1:$PORT$( [ "$SECURED" = 0 ] || echo " (secured: $DIR/client.json)")"; else say "not running"; return 1; fi
}

usage() { echo "usage: $0 up [--secured] | down [--secured] [--wipe] | status [--secured] | fetch" >&2; exit 2; }

COMMAND="${1:-}"
[ $# -gt 0 ] && shift
for arg in "$@"; do
  case "$arg" in
    --secured) SECURED=1 ;;
    --wipe) [ "$COMMAND" = down ] || usage; WIPE=1 ;;
    *) usage ;;
  esac
done
configure

case "$COMMAND" in
  up) up ;;
  down) down ;;
  status) status ;;
  fetch) fetch ;;
  *) usage ;;
esac
