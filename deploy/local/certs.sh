#!/usr/bin/env bash
# Make the TLS material for a SuperLink: a private CA and a server certificate
# signed by it, with the names the SuperNodes and the CLI dial in its SAN.
#
#   deploy/local/certs.sh OUT_DIR [SAN]
#   deploy/local/certs.sh certs "DNS:localhost,IP:127.0.0.1,DNS:superlink"
#
# Writes OUT_DIR/{ca.key,ca.crt,server.key,server.csr,server.pem}; keeps an
# existing set (delete OUT_DIR to start over). ca.crt is what SuperNodes and
# `flwr` get as root certificate; ca.key never leaves the machine that made it.
set -euo pipefail
out=${1:?usage: certs.sh OUT_DIR [SAN]}
san=${2:-DNS:localhost,IP:127.0.0.1}
mkdir -p "$out"
cd "$out"
if [ -s ca.crt ] && [ -s server.pem ] && [ -s server.key ]; then
    echo "TLS material already in $out"
    exit 0
fi
umask 077
openssl genrsa -out ca.key 3072 2>/dev/null
openssl req -new -x509 -key ca.key -sha256 -days 365 -subj "/O=FedAvg/CN=FedAvg test CA" -out ca.crt
openssl genrsa -out server.key 3072 2>/dev/null
cn=${san%%,*}
cat > server.cnf <<CNF
[req]
distinguished_name = dn
req_extensions = v3_req
prompt = no
[dn]
O = FedAvg
CN = ${cn#*:}
[v3_req]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
CNF
openssl req -new -key server.key -out server.csr -config server.cnf
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.pem \
    -days 365 -sha256 -extfile server.cnf -extensions v3_req 2>/dev/null
chmod 644 ca.crt server.pem
echo "TLS material in $out (SAN $san)"
