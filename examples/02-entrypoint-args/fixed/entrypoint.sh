#!/bin/sh
# Fixed image entry point: the job's args arrive here as "$@" and are passed
# on to the model instead of replacing the command.
exec python /app/model.py "$@"
