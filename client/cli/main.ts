process.stderr.write("secretsctl: not built yet\n");
