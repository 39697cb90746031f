/**
 * The completion script for fish: the same lookups as completion-sh.ts as fish `switch`
 * tables over `PATH|WORD`, a state function that walks `commandline -opc`, and one dynamic
 * `complete` whose candidates carry descriptions (`word<TAB>description`).
 */
import type { PathSpec } from "./completion.js";
import { plain } from "./completion.js";

/** `secretsctl completion fish`. */
export function fishScript(spec: readonly PathSpec[], version: string): string {
  const groups = spec.filter((p) => p.subcommands.length > 0);
  const sub = groups.flatMap((p) =>
    p.subcommands.map((s) =>
      arm(
        [s.name, ...s.aliases].map((w) => `${p.path}|${w}`),
        [s.name],
      ),
    ),
  );
  const subs = groups.map((p) =>
    arm(
      [p.path],
      p.subcommands.map((s) => `${s.name}\t${plain(s.description)}`),
    ),
  );
  const flags = spec.map((p) =>
    arm(
      [p.path],
      p.flags.flatMap((f) => f.spellings.map((s) => `${s}\t${plain(f.description)}`)),
    ),
  );
  const values = spec.flatMap((p) =>
    p.flags
      .filter((f) => f.takesValue)
      .map((f) =>
        arm(
          f.spellings.map((s) => `${p.path}|${s}`),
          [f.value],
        ),
      ),
  );
  const positionals = spec.flatMap((p) =>
    p.positionals.map((kind, i) => arm([`${p.path}|${i + 1}`], [kind])),
  );
  return [
    `# fish completion for secretsctl ${version}, written by \`secretsctl completion fish\`.`,
    "# For good:      secretsctl completion fish > ~/.config/fish/completions/secretsctl.fish",
    "# Load it now:   secretsctl completion fish | source",
    "",
    fn("__secretsctl_sub", '"$argv[1]|$argv[2]"', sub, "return 1"),
    fn("__secretsctl_subs", '"$argv[1]"', subs, "return 1"),
    fn("__secretsctl_flags", '"$argv[1]"', flags, "return 1"),
    fn("__secretsctl_flag_value", '"$argv[1]|$argv[2]"', values, "return 1"),
    fn("__secretsctl_pos", '"$argv[1]|$argv[2]"', positionals, "echo none"),
    FISH_MAIN,
    "complete -c secretsctl -e",
    "complete -c secretsctl -f -a '(__secretsctl_complete)'",
    "",
  ].join("\n");
}

// --- internal ---

function fn(name: string, subject: string, arms: readonly string[], fallback: string): string {
  return [
    `function ${name}`,
    `    switch ${subject}`,
    ...arms,
    "        case '*'",
    `            ${fallback}`,
    "    end",
    "end",
    "",
  ].join("\n");
}

/** One `case` that prints each item on its own line. Items never hold a quote. */
function arm(patterns: readonly string[], items: readonly string[]): string {
  const quoted = items.map((i) => `'${i.replace("\t", "'\\t'")}'`).join(" ");
  return [
    `        case ${patterns.map((p) => `'${p}'`).join(" ")}`,
    `            printf '%s\\n' ${quoted}`,
  ].join("\n");
}

const FISH_MAIN = `function __secretsctl_names
    set -l kind $argv[1]
    set -e argv[1]
    set -l cmd (commandline -opc)[1]
    $cmd __complete $kind --timeout 1500 $argv 2>/dev/null
end

function __secretsctl_is_conn
    contains -- $argv[1] --socket --server --token --token-file --ca --timeout
end

# Prints the command path, then the pending option (or -- or nothing), then the number of
# positionals before the cursor, then the connection options, one per line.
function __secretsctl_state
    set -l words (commandline -opc)
    set -e words[1]
    set -l cmdpath ''
    set -l npos 0
    set -l pending ''
    set -l conn
    for w in $words
        if test -n "$pending"
            __secretsctl_is_conn $pending; and set conn $conn $pending $w
            set pending ''
            continue
        end
        switch $w
            case '--'
                set pending '--'
                break
            case '--tls'
                set conn $conn $w
                continue
            case '-*=*'
                set -l name (string split -m1 '=' -- $w)[1]
                __secretsctl_is_conn $name; and set conn $conn $w
                continue
            case '-*'
                if __secretsctl_flag_value "$cmdpath" $w >/dev/null
                    set pending $w
                end
                continue
        end
        set -l sub (__secretsctl_sub "$cmdpath" $w)
        if test -n "$sub"
            set cmdpath (string trim -- "$cmdpath $sub")
        else
            set npos (math $npos + 1)
        end
    end
    printf '%s\\n' "$cmdpath" "$pending" $npos $conn
end

function __secretsctl_values
    set -l kind $argv[1]
    set -e argv[1]
    switch $kind
        case 'names:*'
            __secretsctl_names (string replace 'names:' '' -- $kind) $argv
        case 'words:*'
            string split ',' -- (string replace 'words:' '' -- $kind)
        case scope
            printf '%s\\n' global host
            for n in (__secretsctl_names group $argv)
                echo group:$n
            end
            for n in (__secretsctl_names vm $argv)
                echo vm:$n
            end
        case file
            __fish_complete_path (commandline -ct)
    end
end

function __secretsctl_complete
    set -l state (__secretsctl_state)
    set -l cmdpath $state[1]
    set -l pending $state[2]
    set -l npos $state[3]
    set -l conn $state[4..-1]
    set -l cur (commandline -ct)
    if test "$pending" = '--'
        __fish_complete_path $cur
    else if test -n "$pending"
        __secretsctl_values (__secretsctl_flag_value "$cmdpath" $pending) $conn
    else if string match -q -- '-*' $cur
        __secretsctl_flags "$cmdpath"
    else if __secretsctl_subs "$cmdpath" >/dev/null
        __secretsctl_subs "$cmdpath"
    else
        __secretsctl_values (__secretsctl_pos "$cmdpath" (math $npos + 1)) $conn
    end
end
`;
