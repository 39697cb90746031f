/**
 * The written form of a template, before `validateTemplate` fills in defaults: what a
 * built-in is declared as and what a user template file holds. Typed so built-ins are checked
 * by the compiler as well as by the validator.
 */
import type {
  AwsStsTest,
  Category,
  FieldType,
  HttpTest,
  PostgresTest,
  SmtpTest,
  TemplateField,
} from "./schema.js";

/** A field as written: `key` and `type`, the rest optional; a `when` option may be a string. */
export type FieldInput = { key: string; type: FieldType } & Partial<
  Omit<TemplateField, "key" | "type" | "when">
> & { when?: Record<string, string | string[]> };

type WhenInput = { when?: Record<string, string | string[]> };

/** A connection test as written (`headers` optional). */
export type TestInput =
  | (Omit<HttpTest, "headers" | "when"> & { headers?: Record<string, string> } & WhenInput)
  | (Omit<PostgresTest, "when"> & WhenInput)
  | (Omit<SmtpTest, "when"> & WhenInput)
  | (Omit<AwsStsTest, "when"> & WhenInput);

/** A template as written. */
export interface TemplateInput {
  name: string;
  title: string;
  category: Category;
  description?: string;
  fields: FieldInput[];
  tests?: TestInput[];
}
