/**
 * The completion scripts for bash and zsh. Both get the same lookup functions, written as
 * `case` tables over `PATH|WORD` (valid in both shells), generated from the spec, and a main
 * function in each shell's own API that walks the words before the cursor: subcommands
 * (aliases count), options and the values they take, positionals counted, `--` ends it.
 * A name secretsd holds comes from `secretsctl __complete KIND` with the connection options
 * typed on the line; it prints nothing when secretsd does not answer.
 */
import type { FlagSpec, PathSpec } from "./completion.js";
import { plain } from "./completion.js";

/** `secretsctl completion bash`. */
export function bashScript(spec: readonly PathSpec[], version: string): string {
  return [
    `# bash completion for secretsctl ${version}, written by \`secretsctl completion bash\`.`,
    "# Load it now:   source <(secretsctl completion bash)",
    "# For good:      secretsctl completion bash > /etc/bash_completion.d/secretsctl",
    "",
    lookups(spec, "bash"),
    BASH_MAIN,
    "complete -F _secretsctl secretsctl",
    "",
  ].join("\n");
}

/** `secretsctl completion zsh`: works from a directory in $fpath or sourced. */
export function zshScript(spec: readonly PathSpec[], version: string): string {
  return [
    "#compdef secretsctl",
    `# zsh completion for secretsctl ${version}, written by \`secretsctl completion zsh\`.`,
    '# For good:      secretsctl completion zsh > "$fpath[1]/_secretsctl"   (then: compinit)',
    "# Load it now:   source <(secretsctl completion zsh)   (after compinit)",
    "",
    lookups(spec, "zsh"),
    ZSH_MAIN,
    'if [ "$funcstack[1]" = "_secretsctl" ]; then',
    '  _secretsctl "$@"',
    "else",
    "  compdef _secretsctl secretsctl",
    "fi",
    "",
  ].join("\n");
}

// --- internal ---

/**
 * The lookup functions, in syntax both shells read; zsh's offers carry descriptions
 * (`word:description`, for _describe), bash's are plain word lists (compgen -W).
 */
function lookups(spec: readonly PathSpec[], shell: "bash" | "zsh"): string {
  const groups = spec.filter((p) => p.subcommands.length > 0);
  const sub = groups.flatMap((p) =>
    p.subcommands.map((s) =>
      arm(
        [s.name, ...s.aliases].map((w) => `${p.path}|${w}`),
        s.name,
      ),
    ),
  );
  const subs = groups.map((p) => arm([p.path], p.subcommands.map((s) => s.name).join(" ")));
  const subsDescribed = groups.map((p) =>
    armLines(
      [p.path],
      p.subcommands.map((s) => `${s.name}:${plain(s.description)}`),
    ),
  );
  const flags = spec.map((p) => arm([p.path], p.flags.flatMap((f) => f.spellings).join(" ")));
  const flagsDescribed = spec.map((p) =>
    armLines(
      [p.path],
      p.flags.flatMap((f) => f.spellings.map((s) => `${s}:${plain(f.description)}`)),
    ),
  );
  const values = spec.flatMap((p) =>
    p.flags
      .filter((f: FlagSpec) => f.takesValue)
      .map((f) =>
        arm(
          f.spellings.map((s) => `${p.path}|${s}`),
          f.value,
        ),
      ),
  );
  const positionals = spec.flatMap((p) =>
    p.positionals.map((kind, i) => arm([`${p.path}|${i + 1}`], kind)),
  );
  const offers =
    shell === "bash"
      ? [fn("__secretsctl_flags", '"$1"', flags, "return 1")]
      : [
          fn("__secretsctl_subs_described", '"$1"', subsDescribed, "return 1"),
          fn("__secretsctl_flags_described", '"$1"', flagsDescribed, "return 1"),
        ];
  return [
    fn("__secretsctl_sub", '"$1|$2"', sub, "return 1"),
    fn("__secretsctl_subs", '"$1"', subs, "return 1"),
    ...offers,
    fn("__secretsctl_flag_value", '"$1|$2"', values, "return 1"),
    fn("__secretsctl_pos", '"$1|$2"', positionals, "echo none"),
    SH_NAMES,
  ].join("\n");
}

function fn(name: string, subject: string, arms: readonly string[], fallback: string): string {
  return [
    `${name}() {`,
    `  case ${subject} in`,
    ...arms,
    `    *) ${fallback} ;;`,
    "  esac",
    "}",
    "",
  ].join("\n");
}

/** One `case` arm that echoes one word list. Patterns and words never hold a quote. */
function arm(patterns: readonly string[], text: string): string {
  return `    ${patterns.map((p) => `"${p}"`).join("|")}) echo "${text}" ;;`;
}

/** One `case` arm that prints one line per item. */
function armLines(patterns: readonly string[], items: readonly string[]): string {
  const body = items.map((i) => `'${i}'`).join(" ");
  return `    ${patterns.map((p) => `"${p}"`).join("|")}) printf '%s\\n' ${body} ;;`;
}

/** Names from secretsd, with the connection options the line gave; nothing on failure. */
const SH_NAMES = `__secretsctl_names() {
  local kind=$1
  shift
  "\${__secretsctl_cmd:-secretsctl}" __complete "$kind" --timeout 1500 "$@" 2>/dev/null
}

# The values a scope takes: global, host, group:NAME, vm:NAME.
__secretsctl_scopes() {
  local n
  printf '%s\\n' global host
  for n in $(__secretsctl_names group "$@"); do printf 'group:%s\\n' "$n"; done
  for n in $(__secretsctl_names vm "$@"); do printf 'vm:%s\\n' "$n"; done
}

# Connection options: forwarded to __complete so names come from the daemon the line names.
__secretsctl_is_conn() {
  case "$1" in
    --socket|--server|--token|--token-file|--ca|--timeout) return 0 ;;
    *) return 1 ;;
  esac
}
`;

/** Walks COMP_WORDS (words split at ':' by readline joined back first). */
const BASH_MAIN = `_secretsctl() {
  local -a words=()
  local i w cword=0 last=""
  for ((i = 0; i < \${#COMP_WORDS[@]}; i++)); do
    w=\${COMP_WORDS[i]}
    if [[ \${#words[@]} -gt 0 && ( $w == ":" || $last == *: ) && $i -le $COMP_CWORD ]]; then
      words[\${#words[@]}-1]+=$w
    else
      words+=("$w")
    fi
    last=$w
    [[ $i -eq $COMP_CWORD ]] && cword=$((\${#words[@]} - 1))
  done
  local cur=\${words[cword]} cmdpath="" npos=0 sub pending="" kind
  local -a conn=()
  __secretsctl_cmd=\${words[0]}
  COMPREPLY=()
  for ((i = 1; i < cword; i++)); do
    w=\${words[i]}
    if [[ -n $pending ]]; then
      __secretsctl_is_conn "$pending" && conn+=("$pending" "$w")
      pending=""
      continue
    fi
    case $w in
      --)
        compopt -o default 2>/dev/null
        return 0
        ;;
      --tls) conn+=("$w"); continue ;;
      -*=*) __secretsctl_is_conn "\${w%%=*}" && conn+=("$w"); continue ;;
      -*)
        __secretsctl_flag_value "$cmdpath" "$w" >/dev/null && pending=$w
        continue
        ;;
    esac
    if sub=$(__secretsctl_sub "$cmdpath" "$w"); then
      cmdpath=\${cmdpath:+$cmdpath }$sub
    else
      npos=$((npos + 1))
    fi
  done
  if [[ -n $pending ]]; then
    kind=$(__secretsctl_flag_value "$cmdpath" "$pending")
  elif [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(__secretsctl_flags "$cmdpath")" -- "$cur")
    return 0
  elif __secretsctl_subs "$cmdpath" >/dev/null; then
    mapfile -t COMPREPLY < <(compgen -W "$(__secretsctl_subs "$cmdpath")" -- "$cur")
    return 0
  else
    kind=$(__secretsctl_pos "$cmdpath" $((npos + 1)))
  fi
  case $kind in
    names:*) mapfile -t COMPREPLY < <(compgen -W "$(__secretsctl_names "\${kind#names:}" "\${conn[@]}")" -- "$cur") ;;
    words:*)
      kind=\${kind#words:}
      mapfile -t COMPREPLY < <(compgen -W "\${kind//,/ }" -- "$cur")
      ;;
    scope) mapfile -t COMPREPLY < <(compgen -W "$(__secretsctl_scopes "\${conn[@]}")" -- "$cur") ;;
    file)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      ;;
  esac
  # readline replaces only the part after the last ':' of the word.
  if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
    local strip=\${cur%"\${cur##*:}"}
    for ((i = 0; i < \${#COMPREPLY[@]}; i++)); do COMPREPLY[i]=\${COMPREPLY[i]#"$strip"}; done
  fi
  return 0
}
`;

const ZSH_MAIN = `_secretsctl() {
  local cur=\${words[CURRENT]} cmdpath="" npos=0 sub pending="" kind w i
  local -a conn lines
  __secretsctl_cmd=\${words[1]}
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    if [[ -n $pending ]]; then
      __secretsctl_is_conn "$pending" && conn+=("$pending" "$w")
      pending=""
      continue
    fi
    case $w in
      --)
        _files
        return
        ;;
      --tls) conn+=("$w"); continue ;;
      -*=*) __secretsctl_is_conn "\${w%%=*}" && conn+=("$w"); continue ;;
      -*)
        __secretsctl_flag_value "$cmdpath" "$w" >/dev/null && pending=$w
        continue
        ;;
    esac
    if sub=$(__secretsctl_sub "$cmdpath" "$w"); then
      cmdpath=\${cmdpath:+$cmdpath }$sub
    else
      npos=$((npos + 1))
    fi
  done
  if [[ -n $pending ]]; then
    kind=$(__secretsctl_flag_value "$cmdpath" "$pending")
  elif [[ $cur == -* ]]; then
    lines=("\${(@f)$(__secretsctl_flags_described "$cmdpath")}")
    _describe -t options option lines
    return
  elif __secretsctl_subs "$cmdpath" >/dev/null; then
    lines=("\${(@f)$(__secretsctl_subs_described "$cmdpath")}")
    _describe -t commands command lines
    return
  else
    kind=$(__secretsctl_pos "$cmdpath" $((npos + 1)))
  fi
  case $kind in
    names:*) compadd -- \${(f)"$(__secretsctl_names "\${kind#names:}" "\${conn[@]}")"} ;;
    words:*) compadd -- \${(s:,:)\${kind#words:}} ;;
    scope) compadd -- \${(f)"$(__secretsctl_scopes "\${conn[@]}")"} ;;
    file) _files ;;
  esac
}
`;
