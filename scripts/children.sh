# Sourced by run.sh and cluster.sh: stop the child process groups listed in the caller's `children`
# array (each child leads a group of its own: `set -m` when it was started).

group_alive() { kill -0 -- "-$1" 2>/dev/null; }  # any process left in the child's group

any_alive() {
    local pid
    for pid in "${children[@]}"; do group_alive "$pid" && return 0; done
    return 1
}

# One SIGTERM to every group; what is alive STOP_SECONDS later is killed.
stop_children() {
    trap '' INT TERM  # stopping already; a second Ctrl-C changes nothing, the deadline below still holds
    local pid groups=()
    for pid in "${children[@]}"; do groups+=("-$pid"); done
    kill -TERM -- "${groups[@]}" 2>/dev/null
    local deadline=$((SECONDS + STOP_SECONDS))
    while any_alive; do
        if ((SECONDS >= deadline)); then
            echo "${0##*/}: still running after ${STOP_SECONDS}s; killing" >&2
            kill -KILL -- "${groups[@]}" 2>/dev/null
            break
        fi
        sleep 0.2
    done
    wait "${children[@]}" 2>/dev/null
}
