#!/bin/sh
# The container image's `proxyauth` (/usr/local/bin/proxyauth, its ENTRYPOINT): the CLI with the
# umask of the systemd unit (UMask=0077), so that every file the gateway or an admin command
# creates in the volumes is the service user's only. `exec`: node replaces this shell, so the
# gateway is PID 1 and gets `docker stop`'s SIGTERM itself (see deploy/README.md, Containers).
umask 077
exec node /opt/proxyauth/dist/supervisor/cli.js "$@"
