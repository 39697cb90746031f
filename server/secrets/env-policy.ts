/**
 * Env var names that change how programs are found, loaded or run, rather than carry a
 * credential. A value pushed into one of these on a VM runs code or redirects lookups in every
 * service that reads the env file (LD_PRELOAD loads a library into each process, BASH_ENV runs
 * a script in every non-interactive bash, NODE_OPTIONS can `--require` a file, PATH picks which
 * binary runs). Such a name is refused unless the secret carries an explicit
 * `allow_sensitive_env` flag, so it can only be set on purpose (issue #8, item 7).
 */
import { invalidArgument } from "../errors.js";

/** Exact names (shells, loaders, language runtimes, systemd's own protocol variables). */
const SENSITIVE = new Set([
  "_",
  "BASH_ENV",
  "BASHOPTS",
  "CDPATH",
  "CLASSPATH",
  "CREDENTIALS_DIRECTORY",
  "ENV",
  "GCONV_PATH",
  "GIT_EXEC_PATH",
  "GIT_SSH",
  "GIT_SSH_COMMAND",
  "GLIBC_TUNABLES",
  "HOME",
  "HOSTALIASES",
  "IFS",
  "JAVA_TOOL_OPTIONS",
  "JDK_JAVA_OPTIONS",
  "_JAVA_OPTIONS",
  "LISTEN_FDNAMES",
  "LISTEN_FDS",
  "LISTEN_PID",
  "LOCALDOMAIN",
  "LOCPATH",
  "NLSPATH",
  "NODE_EXTRA_CA_CERTS",
  "NODE_OPTIONS",
  "NODE_PATH",
  "NOTIFY_SOCKET",
  "PATH",
  "PERL5DB",
  "PERL5LIB",
  "PERL5OPT",
  "PERLLIB",
  "PROMPT_COMMAND",
  "PS4",
  "PYTHONHOME",
  "PYTHONINSPECT",
  "PYTHONPATH",
  "PYTHONSTARTUP",
  "PYTHONUSERBASE",
  "RES_OPTIONS",
  "RUBYLIB",
  "RUBYOPT",
  "SHELL",
  "SHELLOPTS",
  "SSL_CERT_DIR",
  "SSL_CERT_FILE",
  "TMPDIR",
]);

/** Prefixes: the dynamic loader's (glibc, macOS), malloc tuning, exported bash functions. */
const SENSITIVE_PREFIXES = ["LD_", "DYLD_", "MALLOC_", "BASH_FUNC_"];

/**
 * Refuses a sensitive env var name unless `allowed`; INVALID_ARGUMENT naming `field`.
 * `allowed` comes from the secret's own flag, never from a global switch.
 */
export function checkEnvPolicy(field: string, env: string, allowed: boolean): void {
  if (allowed || !isSensitiveEnv(env)) return;
  throw invalidArgument(
    field,
    `${env} changes how programs load or run on the VM, so it is refused; set allow_sensitive_env on the secret (secretsctl --allow-sensitive-env) to deliver it anyway`,
  );
}

// --- internal ---

/** True when `env` is on the deny-list. */
function isSensitiveEnv(env: string): boolean {
  return SENSITIVE.has(env) || SENSITIVE_PREFIXES.some((p) => env.startsWith(p));
}
