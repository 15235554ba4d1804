# Sourced (`. test/component/start-sshd.sh`) by the self-test jobs in .gitlab-ci.yml, as root in a Debian-based
# node image: starts a throwaway sshd on 127.0.0.1:2222 and, on 127.0.0.1:2200, a proxy that resets the first
# connection, so the job has to retry. Exports SELF_TEST_SSH_KEY and SELF_TEST_KNOWN_HOSTS (file paths); the
# self-test passes those names to the component's key-variable and known-hosts-variable inputs.
# test/component/stop-sshd.sh stops both again (after_script); in a container they would die with it anyway.

# The job's working directory, not $CI_PROJECT_DIR: gitlab-ci-local's shell executor sets that to a
# /builds/... path that does not exist on the host.
SELF_TEST_DIR="$PWD/.self-test-sshd"
# Start clean, also where a shell executor reuses the directory: no old keys, no earlier upload.
rm -rf "$SELF_TEST_DIR" "$PWD/.self-test-target"
mkdir -p "$SELF_TEST_DIR" /run/sshd
chmod 700 "$SELF_TEST_DIR"

if ! command -v sshd >/dev/null && [ ! -x /usr/sbin/sshd ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
fi

ssh-keygen -q -t ed25519 -N '' -C self-test-host -f "$SELF_TEST_DIR/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C self-test-client -f "$SELF_TEST_DIR/client_ed25519"
cp "$SELF_TEST_DIR/client_ed25519.pub" "$SELF_TEST_DIR/authorized_keys"

cat > "$SELF_TEST_DIR/sshd_config" <<CONFIG
ListenAddress 127.0.0.1
Port 2222
HostKey $SELF_TEST_DIR/host_ed25519
AuthorizedKeysFile $SELF_TEST_DIR/authorized_keys
PidFile $SELF_TEST_DIR/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
CONFIG
/usr/sbin/sshd -f "$SELF_TEST_DIR/sshd_config" -E "$SELF_TEST_DIR/sshd.log"

# The pin is the key we just generated, read from the file: nothing asks the server for its key.
printf '[127.0.0.1]:2200 %s\n' "$(cut -d' ' -f1,2 "$SELF_TEST_DIR/host_ed25519.pub")" > "$SELF_TEST_DIR/known_hosts"

# No inherited stdin/stdout: a background process holding the job's output open would keep the job running.
node test/component/reset-once-proxy.mjs 2200 2222 "$SELF_TEST_DIR/proxy.ready" </dev/null >"$SELF_TEST_DIR/proxy.log" 2>&1 &
i=0
while [ ! -f "$SELF_TEST_DIR/proxy.ready" ]; do
  i=$((i + 1))
  if [ "$i" -gt 100 ]; then echo "self-test: the proxy did not start" >&2; cat "$SELF_TEST_DIR/proxy.log" >&2; exit 1; fi
  sleep 0.1
done

export SELF_TEST_SSH_KEY="$SELF_TEST_DIR/client_ed25519"
export SELF_TEST_KNOWN_HOSTS="$SELF_TEST_DIR/known_hosts"
echo "self-test: sshd on 127.0.0.1:2222, resetting proxy on 127.0.0.1:2200"
