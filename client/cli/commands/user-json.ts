/** Roles and users as the user commands print them; never a token. */
import type { Team, User } from "../../../proto/gen/vmauth/v1/access_pb.js";
import { Role } from "../../../proto/gen/vmauth/v1/access_pb.js";
import { UsageError } from "../errors.js";
import { iso } from "../output.js";

const NAMES: [string, Role][] = [
  ["admin", Role.ADMIN],
  ["operator", Role.OPERATOR],
  ["viewer", Role.VIEWER],
];

/** The role `--role`/ROLE names; a usage error naming `flag` for anything else. */
export function parseRole(flag: string, name: string | undefined): Role {
  const found = NAMES.find(([n]) => n === name);
  if (!found) {
    throw new UsageError(`${flag}: expected one of ${NAMES.map(([n]) => n).join(", ")}`);
  }
  return found[1];
}

export function roleName(r: Role): string {
  return NAMES.find(([, v]) => v === r)?.[0] ?? "unspecified";
}

export function userJson(u: User | undefined) {
  if (!u) return null;
  return {
    name: u.name,
    role: roleName(u.role),
    teams: u.teams,
    hasToken: u.hasToken,
    tokenId: u.tokenId,
    createdAt: iso(u.createdAt),
  };
}

export function teamJson(t: Team | undefined) {
  if (!t) return null;
  return { name: t.name, groups: t.groups, members: t.members };
}
