process.stderr.write("vm-auth-shim: not built yet\n");
