# Runs in after_script of the self-test jobs: prints the logs of the throwaway sshd and proxy that
# start-sshd.sh started, then stops both (their pids are in its directory).
SELF_TEST_DIR="$PWD/.self-test-sshd"
for log in proxy.log sshd.log; do
  if [ -f "$SELF_TEST_DIR/$log" ]; then echo "--- $log"; cat "$SELF_TEST_DIR/$log"; fi
done
for pidfile in sshd.pid proxy.ready; do
  if [ -f "$SELF_TEST_DIR/$pidfile" ]; then kill "$(cat "$SELF_TEST_DIR/$pidfile")" 2>/dev/null || true; fi
done
