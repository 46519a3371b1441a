#!/bin/sh
# Joins disque-server nodes into one cluster, with redis-cli:
#
#   cluster-join.sh HOST:PORT HOST:PORT [HOST:PORT...]
#
# 1. waits until every node answers PING;
# 2. has the first node CLUSTER MEET each of the others;
# 3. waits until every node's CLUSTER NODES lists every node (by CLUSTER MYID) as a full
#    member: not in handshake, not failing.
# Then it exits 0. Running it again on a joined cluster changes nothing.
#
# HOST is an IP address or a host name. CLUSTER MEET takes numeric addresses only, so
# names are resolved here (getent), and the first node is given the addresses this
# script reached the others at: run it where the nodes reach each other at the same
# addresses, as docker/compose.yaml's init service does (disque1:7711 ...), or on the
# host with 127.0.0.1:PORT arguments (`make cluster`). IPv6: [::1]:7711.
#
# Environment:
#   JOIN_TIMEOUT   seconds for the whole run (default 60)
#   REDISCLI_AUTH  the password, for nodes with requirepass (redis-cli sends it)
#
# Exit status: 0 joined; 1 a node did not answer, refused MEET, or the cluster was not
# joined in time (the message says which node, and what it lists); 2 bad arguments.
set -eu

me=cluster-join.sh
timeout_s=${JOIN_TIMEOUT:-60}

usage() {
  echo "usage: $me HOST:PORT HOST:PORT [HOST:PORT...]  (JOIN_TIMEOUT=seconds, default 60)" >&2
  exit 2
}

fail() {
  echo "$me: error: $*" >&2
  exit 1
}

case $timeout_s in
  '' | *[!0-9]*) echo "$me: JOIN_TIMEOUT must be a number of seconds: '$timeout_s'" >&2; exit 2 ;;
esac
[ $# -ge 2 ] || usage
command -v redis-cli >/dev/null 2>&1 || fail "redis-cli is not installed (Debian: redis-tools)"
deadline=$(($(date +%s) + timeout_s))

# Node i (1..n) is kept in variables: addr_i (as given), host_i, port_i, ip_i, id_i.
set_var() { eval "$1_$2=\$3"; }
get_var() { eval "printf '%s' \"\${$1_$2}\""; }

n=0
for arg in "$@"; do
  n=$((n + 1))
  case $arg in
    *:*) ;;
    *) echo "$me: not HOST:PORT: '$arg'" >&2; usage ;;
  esac
  host=${arg%:*}
  port=${arg##*:}
  host=${host#\[}
  host=${host%\]}
  case $port in
    '' | *[!0-9]*) echo "$me: bad port in '$arg'" >&2; usage ;;
  esac
  [ -n "$host" ] || { echo "$me: no host in '$arg'" >&2; usage; }
  set_var addr $n "$arg"
  set_var host $n "$host"
  set_var port $n "$port"
  set_var ip $n ""
  set_var id $n ""
done

expired() { [ "$(date +%s)" -ge "$deadline" ]; }

pause() { sleep 0.2 2>/dev/null || sleep 1; }

# redis-cli against node $1 with the remaining arguments. Each call is bounded (a
# blackholed address would otherwise hang) by at most 5 s and by the time left.
cli() {
  node=$1
  shift
  left=$((deadline - $(date +%s)))
  [ "$left" -ge 1 ] || left=1
  [ "$left" -le 5 ] || left=5
  if command -v timeout >/dev/null 2>&1; then
    timeout "$left" redis-cli -h "$(get_var host "$node")" -p "$(get_var port "$node")" "$@" 2>&1
  else
    redis-cli -h "$(get_var host "$node")" -p "$(get_var port "$node")" "$@" 2>&1
  fi
}

# The numeric address of a host: itself if it is one, else the first IPv4 address
# getent finds (ahostsv4: "localhost" must not become ::1), else its first address.
resolve() {
  case $1 in
    *:*) printf '%s\n' "$1"; return ;;  # IPv6 literal
  esac
  if printf '%s\n' "$1" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$'; then
    printf '%s\n' "$1"
    return
  fi
  { getent ahostsv4 "$1" 2>/dev/null || getent hosts "$1" 2>/dev/null || true; } | awk 'NR == 1 { print $1 }'
}

# 1. Every node resolves and answers PING; take its ID.
i=1
while [ $i -le $n ]; do
  addr=$(get_var addr $i)
  reply=""
  while :; do
    ip=$(resolve "$(get_var host $i)")
    if [ -z "$ip" ]; then
      reply="the name does not resolve"
    else
      reply=$(cli $i PING || true)
      [ "$reply" = PONG ] && break
    fi
    expired && fail "$addr did not answer PING within $timeout_s s (last: ${reply:-no reply})"
    pause
  done
  id=$(cli $i CLUSTER MYID || true)
  case $id in
    *[!0-9a-f]* | '') fail "$addr: CLUSTER MYID answered '$id', not a node ID: is this a disque-server?" ;;
  esac
  set_var ip $i "$ip"
  set_var id $i "$id"
  echo "$me: $addr ($ip) is up, node $id"
  i=$((i + 1))
done

# 2. The first node meets every other one; gossip completes the mesh.
i=2
while [ $i -le $n ]; do
  reply=$(cli 1 CLUSTER MEET "$(get_var ip $i)" "$(get_var port $i)" || true)
  [ "$reply" = OK ] || fail "$(get_var addr 1): CLUSTER MEET $(get_var ip $i) $(get_var port $i) answered: $reply"
  i=$((i + 1))
done
echo "$me: $(get_var addr 1) met the $((n - 1)) other node(s); waiting for every node to list all $n"

# 3. Every node lists every ID as a full member. $lagging says who does not, for the
# timeout message.
joined() {
  j=1
  while [ $j -le $n ]; do
    nodes=$(cli $j CLUSTER NODES || true)
    k=1
    while [ $k -le $n ]; do
      if ! printf '%s\n' "$nodes" | awk -v id="$(get_var id $k)" \
          '$1 == id && $3 !~ /handshake|fail|noaddr/ { found = 1 } END { exit !found }'; then
        lagging="$(get_var addr $j) does not list $(get_var addr $k) (node $(get_var id $k)) as a member yet; its CLUSTER NODES:
$nodes"
        return 1
      fi
      k=$((k + 1))
    done
    j=$((j + 1))
  done
}

lagging=""
until joined; do
  expired && fail "the cluster did not form within $timeout_s s: $lagging"
  pause
done
echo "$me: joined: every node lists all $n nodes"
