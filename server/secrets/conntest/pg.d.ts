// The part of `pg` (which ships no types) that postgres.ts uses; @types/pg is not a dependency.
declare module "pg" {
  import type { ConnectionOptions } from "node:tls";

  interface ClientConfig {
    host: string;
    port: number;
    user: string;
    password: string;
    database: string;
    ssl: false | ConnectionOptions;
    sslnegotiation: "postgres";
    application_name: string;
    connectionTimeoutMillis: number;
    query_timeout: number;
  }
  class Client {
    constructor(config: ClientConfig);
    connect(): Promise<void>;
    query(text: string): Promise<{ rows: Record<string, unknown>[] }>;
    end(): Promise<void>;
    on(event: "error", listener: (err: Error) => void): this;
    readonly connection: { stream: { destroy(): void } };
  }
  const pg: { Client: typeof Client };
  export default pg;
}
