# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_reggie_build_global_optspecs
    string join \n color= q/quiet v/verbose h/help V/version
end

function __fish_reggie_build_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_reggie_build_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_reggie_build_using_subcommand
    set -l cmd (__fish_reggie_build_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c reggie-build -n "__fish_reggie_build_needs_command" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_needs_command" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -s h -l help -d 'Print help'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -s V -l version -d 'Print version'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -f -a "ls" -d 'List every file Docker would send as the build context'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -f -a "explain" -d 'Say whether files are sent, and which ignore-file line decided'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -f -a "analyze" -d 'Before and after: what the build sends, what it needs, what is wasted and why, and how to fix it'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -f -a "check" -d 'Fail when an image\'s context is over budget or would break the build (exit 0 all fit, 1 one does not, 2 usage or analysis error)'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -f -a "context" -d 'Write the build context as a tar stream'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -f -a "image" -d 'Build the image through the Docker daemon from the minimal context, and optionally push it'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -f -a "discover" -d 'Find the images the repository builds (Dockerfiles, docker compose files, SST configs) and optionally write them to reggie-build.toml'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -f -a "affected" -d 'Which images a git change affects, and the first Dockerfile step whose build cache it busts (exit 0 either way, 2 on errors)'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -f -a "digest" -d 'The content digest of what a build reads: the minimal context, the Dockerfile, build args, target and platform (stable across clones)'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -f -a "size" -d 'What an image weighs, layer by layer, by Dockerfile line: the waste (hidden, duplicated, caches, toolchains) found exactly, with the fix'
complete -c reggie-build -n "__fish_reggie_build_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand ls" -s f -l file -d 'The Dockerfile (default: PATH/Dockerfile)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand ls" -l builder -d 'Reproduce BuildKit\'s rules (default) or the classic builder\'s; for `image`, also the daemon\'s builder that runs the build' -r -f -a "buildkit\t''
classic\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand ls" -l target -d 'The stage to build (default: the last one)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand ls" -l build-arg -d 'A build argument, `KEY=VALUE`, or `KEY` to take it from the environment (repeatable)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand ls" -l platform -d 'Target platform, e.g. linux/amd64' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand ls" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand ls" -l minimal -d 'Only what the Dockerfile can read (the minimal context)'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand ls" -s 0 -l null -d 'End each path with a NUL byte instead of a newline (names may hold newlines), like `find -print0`; for `xargs -0`'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand ls" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand ls" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand ls" -s h -l help -d 'Print help'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand explain" -s f -l file -d 'The Dockerfile (default: PATH/Dockerfile)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand explain" -l builder -d 'Reproduce BuildKit\'s rules (default) or the classic builder\'s' -r -f -a "buildkit\t''
classic\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand explain" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand explain" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand explain" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand explain" -s h -l help -d 'Print help'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -s f -l file -d 'The Dockerfile (default: PATH/Dockerfile)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l image -d 'An image from reggie-build.toml (repeatable)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l config -d 'The config file (default: reggie-build.toml here or above, up to the repository root)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l builder -d 'Reproduce BuildKit\'s rules (default) or the classic builder\'s' -r -f -a "buildkit\t''
classic\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l target -d 'The stage to build (default: the last one)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l build-arg -d 'A build argument, `KEY=VALUE`, or `KEY` to take it from the environment (repeatable)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l platform -d 'Target platform, e.g. linux/amd64' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l top -d 'How many entries each "top" list shows' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l format -d 'Output format' -r -f -a "human\t'The report for a terminal'
json\t'One versioned JSON object (`"schema": 1`)'
markdown\t'Markdown, for a pull-request comment'
github\t'GitHub workflow commands (findings on pull-request lines), and a summary appended to $GITHUB_STEP_SUMMARY'
sarif\t'SARIF 2.1.0, for code scanning'
html\t'One self-contained HTML page (a treemap of the context for `analyze`, the budgets for `check`)'"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l rules -d 'Extra rule files (`*.toml`, same format as reggie-build\'s `rules/`)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -s o -l output -d 'Write the report to FILE instead of stdout (e.g. `--format html -o report.html`)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l json -d 'Same as `--format json`: one JSON object (`"schema": 1`)'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l write-ignore -d 'Write the suggested ignore file (`<Dockerfile>.dockerignore`, or `.dockerignore` with `--builder classic`)'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -l force -d 'Overwrite an existing ignore file with `--write-ignore`'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand analyze" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -s f -l file -d 'The Dockerfile (default: PATH/Dockerfile)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l image -d 'An image from reggie-build.toml (repeatable)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l config -d 'The config file (default: reggie-build.toml here or above, up to the repository root)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l builder -d 'Reproduce BuildKit\'s rules (default) or the classic builder\'s' -r -f -a "buildkit\t''
classic\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l target -d 'The stage to build (default: the last one)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l build-arg -d 'A build argument, `KEY=VALUE`, or `KEY` to take it from the environment (repeatable)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l platform -d 'Target platform, e.g. linux/amd64' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l max-size -d 'Fail when the uploaded context is larger (e.g. "50 MB")' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l max-files -d 'Fail when the uploaded context has more files' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l baseline -d 'A saved report (`analyze --json` or `check --format json`, a regular file of at most 32 MiB) to compare with: names what grew. E.g. `--baseline main-report.json`' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l format -d 'Output format' -r -f -a "human\t'The report for a terminal'
json\t'One versioned JSON object (`"schema": 1`)'
markdown\t'Markdown, for a pull-request comment'
github\t'GitHub workflow commands (findings on pull-request lines), and a summary appended to $GITHUB_STEP_SUMMARY'
sarif\t'SARIF 2.1.0, for code scanning'
html\t'One self-contained HTML page (a treemap of the context for `analyze`, the budgets for `check`)'"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l changed -d 'Only check images these changed files can affect (for pre-commit, which passes the staged files); exit 0 at once when none' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l rules -d 'Extra rule files (`*.toml`)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -s o -l output -d 'Write the report to FILE instead of stdout (e.g. `--format html -o budget.html`)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l full -d 'Measure the whole context as Docker sends it, not the minimal one'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -l strict -d 'Warnings fail the check too'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand context" -s f -l file -d 'The Dockerfile (default: PATH/Dockerfile)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand context" -l builder -d 'Reproduce BuildKit\'s rules (default) or the classic builder\'s; for `image`, also the daemon\'s builder that runs the build' -r -f -a "buildkit\t''
classic\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand context" -s o -l output -d 'Output file, or `-` for stdout' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand context" -l compress -d 'Compress the stream' -r -f -a "none\t''
gzip\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand context" -l level -d 'Gzip level, 1 (fastest) to 9 (smallest)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand context" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand context" -l digest -d 'Print the context\'s content digest (paths, modes, link targets and contents; not mtimes)'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand context" -l reproducible -d 'Clamp mtimes to SOURCE_DATE_EPOCH (or 0) for a byte-identical archive'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand context" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand context" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand context" -s h -l help -d 'Print help'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -s f -l file -d 'The Dockerfile (default: PATH/Dockerfile)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l builder -d 'Reproduce BuildKit\'s rules (default) or the classic builder\'s; for `image`, also the daemon\'s builder that runs the build' -r -f -a "buildkit\t''
classic\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -s t -l tag -d 'Name and tag the image (repeatable)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l build-arg -d 'A build argument; `KEY` alone takes the value of the environment variable KEY' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l target -d 'The stage to build' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l platform -d 'Target platform, e.g. linux/amd64 (several, comma-separated, where the builder can build them; the Docker daemon builds one)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -s o -l output -d 'Where the result goes instead of an image, as `docker build -o`: type=local,dest=DIR (or DIR), type=tar,dest=FILE (or - for stdout)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l cache-from -d 'Import build cache: an image pushed with inline cache (type=registry,ref=IMAGE, or IMAGE)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l cache-to -d 'Export build cache: type=inline puts it in the image (push it with --push; a later build imports it with --cache-from)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l label -d 'An image label (repeatable)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l network -d 'The network of RUN steps: default, host, none (or, for the classic builder, a network name), as `docker build --network`' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l secret -d 'A build secret for `RUN --mount=type=secret,id=ID`, read from a file (a regular file of at most 500 KiB, BuildKit\'s limit; one inside the repository never through a link out of it) or an environment variable; never in output, logs or the image (BuildKit only). E.g. `--secret id=npm,src=$HOME/.npmrc`' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l ssh -d 'An ssh agent for `RUN --mount=type=ssh,id=ID`: `default` is $SSH_AUTH_SOCK; `ID=SOCKET` an agent socket; `ID=KEY[,KEY]` private key files, served by a private ssh-agent for the build (openssh-client; a key with a passphrase: add it to your agent and pass `default`). BuildKit only' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l compress -d 'Compression of the classic builder\'s upload' -r -f -a "auto\t'None for a local socket, gzip for a remote daemon'
none\t''
gzip\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l registry-endpoint -d 'Push to this HOST:PORT instead of the tag\'s registry, keeping its identity for credentials (env REGGIE_REGISTRY_ENDPOINT)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l username -d 'Registry user (with --password-stdin)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l buildkit-addr -d 'Build on this BuildKit engine through its Control API instead of the Docker daemon: a buildkitd (on Kubernetes, a hosted builder) pushes the image itself (--push); a Docker daemon\'s embedded BuildKit stores it in that daemon' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l buildkit-ca -d 'The CA that signed the builder\'s certificate (TLS to --buildkit-addr)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l buildkit-cert -d 'The client certificate for mutual TLS with the builder' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l buildkit-key -d 'The client certificate\'s key' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l buildkit-server-name -d 'The name the builder\'s certificate carries, when not the host of --buildkit-addr' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l idle-timeout -d 'Fail when the daemon reads nothing of the upload for this many seconds (a stalled daemon or connection); progress is reported as stalled before that' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l base -d 'With --affected: the revision to compare with (default HEAD~1)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l head -d 'With --affected: the revision to check (default HEAD)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l config -d 'With --all or --affected: the config file (default: reggie-build.toml here or above, up to the repository root)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l jobs -d 'With --all or --affected: images built at the same time' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l no-cache -d 'Do not use the build cache'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l pull -d 'Always pull newer base images'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l full -d 'With --builder classic: upload the whole context as `docker build` does, not the minimal one (BuildKit asks for what it reads itself)'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l json -d 'One JSON event per line on stdout'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l push -d 'Push every tag after the build'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l create-repo -d 'Create missing ECR repositories before pushing'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l password-stdin -d 'Read the registry password from stdin'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l skip-if-exists -d 'Skip the build when an image built from the same context, Dockerfile, target, build args and platform exists: in the daemon, or (with --push) under the first tag in the registry'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l all -d 'Build every image of reggie-build.toml (tags from its templates)'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l affected -d 'Build the images of reggie-build.toml that a git change affects (as `reggie-build affected` decides), tags from its templates'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -l worktree -d 'With --affected: check the work tree as it is instead of --head'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand image" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand discover" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand discover" -l json -d 'Print a JSON array, one object per build'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand discover" -l write -d 'Write `reggie-build.toml` at PATH, one `[[image]]` per build, with a size budget a little above today\'s minimal context'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand discover" -l force -d 'Overwrite an existing `reggie-build.toml` with `--write`'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand discover" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand discover" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand discover" -s h -l help -d 'Print help'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand affected" -l base -d 'The revision to compare with (what the cache was built from)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand affected" -l head -d 'The revision to check' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand affected" -l config -d 'The config file (default: reggie-build.toml here or above; without one, the builds `discover` finds)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand affected" -l image -d 'Only this image (repeatable)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand affected" -l format -d 'Output format: human; json (`"schema": 1`); github (writes `matrix`, `any` and `images` to $GITHUB_OUTPUT and a summary to $GITHUB_STEP_SUMMARY); markdown (a pull-request comment)' -r -f -a "human\t''
json\t''
github\t''
markdown\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand affected" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand affected" -l worktree -d 'Check the work tree as it is (uncommitted and untracked files too) instead of --head'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand affected" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand affected" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand affected" -s h -l help -d 'Print help'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -s f -l file -d 'The Dockerfile (default: PATH/Dockerfile)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -l image -d 'An image from reggie-build.toml (repeatable)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -l config -d 'The config file (default: reggie-build.toml here or above, up to the repository root)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -l builder -d 'Reproduce BuildKit\'s rules (default) or the classic builder\'s' -r -f -a "buildkit\t''
classic\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -l target -d 'The stage to build (default: the last one)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -l build-arg -d 'A build argument, `KEY=VALUE`, or `KEY` to take it from the environment (repeatable)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -l platform -d 'Target platform, e.g. linux/amd64' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -l json -d 'One JSON object per image: `name`, `digest`, `context` (the minimal context\'s own digest), `entries`, `bytes`'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand digest" -s h -l help -d 'Print help'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -s f -l file -d 'The Dockerfile the image was built from, to attribute layers to its lines (default: the one `reggie-build image` recorded, if any)' -r -F
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l target -d 'The stage the image is (default: the one whose instructions match the history best)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l build-arg -d 'A build argument the image was built with (`KEY=VALUE`)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l platform -d 'The platform to read from an index (`os/arch[/variant]`; default this machine\'s)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l image -d 'Which image of an archive holding several (`name:tag`)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l from -d 'For an image reference: read it from the daemon or the registry (default: the daemon when it has it, else the registry)' -r -f -a "daemon\t'The Docker daemon\'s image store (streamed from its export)'
registry\t'The registry, without pulling (manifest, config and blobs)'"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l registry-endpoint -d 'Reach the registry at this `host:port` instead of the reference\'s (credentials stay the reference\'s)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l username -d 'Registry user (with --password-stdin)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l tree -d 'List the entries of layer N (1 = the base), or with no N the files the final image shows, instead of the report' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l format -d 'Output format' -r -f -a "human\t'The report for a terminal'
json\t'One JSON object'"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l top -d 'Waste items shown in detail (human format)' -r
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -l password-stdin -d 'Read the registry password or token from stdin'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand size" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand completions" -l color -d 'Colour: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t''
always\t''
never\t''"
complete -c reggie-build -n "__fish_reggie_build_using_subcommand completions" -s q -l quiet -d 'Less output: errors only'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand completions" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c reggie-build -n "__fish_reggie_build_using_subcommand completions" -s h -l help -d 'Print help'
