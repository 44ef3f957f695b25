# shellcheck shell=bash
# Sourced by start-head.sh, start-worker.sh and run-job.sh: Ray's token authentication stays on.
#
# Every Ray process of the cluster (head, workers, the job client) needs RAY_AUTH_MODE=token and
# the same token, which Ray reads, in this order, from RAY_AUTH_TOKEN (the token itself),
# RAY_AUTH_TOKEN_PATH (a file holding it) or ~/.ray/auth_token. In the containers the token is
# the compose secret (Kubernetes: a Secret) mounted at /run/secrets/ray_auth_token; it is never
# part of the image.

RAY_AUTH_SECRET_FILE="${RAY_AUTH_SECRET_FILE:-/run/secrets/ray_auth_token}"

ray_auth_setup() {
    export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
    if [ "$RAY_AUTH_MODE" != "token" ]; then
        echo "RAY_AUTH_MODE=$RAY_AUTH_MODE: these scripts run Ray with token authentication" \
            "only; unset RAY_AUTH_MODE or set it to 'token'" >&2
        exit 2
    fi
    if [ -n "${RAY_AUTH_TOKEN:-}" ]; then
        return 0
    fi
    if [ -z "${RAY_AUTH_TOKEN_PATH:-}" ] && [ -f "$RAY_AUTH_SECRET_FILE" ]; then
        export RAY_AUTH_TOKEN_PATH="$RAY_AUTH_SECRET_FILE"
    fi
    local token_file="${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}"
    if [ ! -r "$token_file" ] || [ ! -s "$token_file" ]; then
        echo "no Ray authentication token: $token_file is missing, empty or unreadable." \
            "Set RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH to a file holding the token" \
            "(make one with: python3 -c 'import secrets; print(secrets.token_hex(32))')" >&2
        exit 2
    fi
}

# Append "--flag value" to the array named by $1 when the variable named by $3 is set and not
# empty: optional settings pass through to `ray start` only when given.
add_opt() {
    local -n _args="$1"
    local value="${!3:-}"
    if [ -n "$value" ]; then
        _args+=("$2" "$value")
    fi
}
