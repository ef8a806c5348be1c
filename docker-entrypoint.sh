#!/bin/sh
# Run the container's command as the user monitor, whoever owns the data folder: a bind
# mount keeps the host's owners, and Docker creates a missing ./data as root. Started as
# another user (docker run --user), there is nothing to fix or drop: run the command.
set -eu

data="${MONITOR_DATA_DIR:-/app/data}"

if [ "$(id -u)" = 0 ]; then
    uid="$(id -u monitor)"
    mkdir -p "$data"
    # The folder and what is directly in it (the database, its -wal and -shm, the lock
    # files), not the trees an operator keeps below it. -h: a symlink there is changed
    # itself, never the file it points to.
    find "$data" -maxdepth 1 ! -user "$uid" -exec chown -h monitor:monitor {} +
    exec setpriv --reuid=monitor --regid=monitor --init-groups "$@"
fi
exec "$@"
