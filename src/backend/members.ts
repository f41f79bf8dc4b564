/**
 * The cluster's members, as Cluster.MemberList/Add/Remove/Update report and
 * change them; persisted (meta record "members") so that peers can use them.
 * This server is always a member; its name and client URLs follow its flags.
 */
import { randomBytes } from "node:crypto";
import { ChangeLog } from "../persist/changelog";
import { MergekvError } from "../errors";

export interface Member {
  /** uint64 as a decimal string (no precision lost in JS). */
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/** Members one cluster may list: bounds the record and every MemberList answer. */
export const MEMBERS_MAX = 128;
const META_NAME = "members";

export class Members {
  private constructor(private readonly log: ChangeLog, private members: Member[], readonly self: Member) {}

  static async load(log: ChangeLog, self: Member): Promise<Members> {
    const members = ((await log.getJsonMeta(META_NAME)) ?? []) as Member[];
    const others = members.filter((m) => m.id !== self.id);
    const mine = members.find((m) => m.id === self.id);
    const me: Member = { ...self, peerURLs: mine?.peerURLs ?? self.peerURLs };
    const set = new Members(log, [me, ...others], me);
    await set.save();
    return set;
  }

  list(): Member[] {
    return this.members.map((m) => ({ ...m }));
  }

  async add(peerURLs: string[], isLearner: boolean): Promise<Member> {
    checkURLs(peerURLs);
    if (this.members.length >= MEMBERS_MAX) throw new MergekvError("InvalidArgument", `mergekv: a cluster has at most ${MEMBERS_MAX} members`);
    this.refuseTaken(peerURLs, "");
    const member: Member = { id: BigInt.asUintN(63, randomBytes(8).readBigUInt64BE()).toString(), name: "", peerURLs, clientURLs: [], isLearner };
    this.members = [...this.members, member];
    await this.save();
    return { ...member };
  }

  async remove(id: string): Promise<void> {
    if (!this.members.some((m) => m.id === id)) throw new MergekvError("MemberNotFound");
    if (id === this.self.id) throw new MergekvError("InvalidArgument", "mergekv: a server cannot remove itself; remove it through another member");
    this.members = this.members.filter((m) => m.id !== id);
    await this.save();
  }

  async update(id: string, peerURLs: string[]): Promise<void> {
    checkURLs(peerURLs);
    const m = this.members.find((x) => x.id === id);
    if (!m) throw new MergekvError("MemberNotFound");
    this.refuseTaken(peerURLs, id);
    this.members = this.members.map((x) => (x.id === id ? { ...x, peerURLs } : x));
    await this.save();
  }

  private refuseTaken(peerURLs: string[], exceptId: string): void {
    const taken = new Set(this.members.filter((m) => m.id !== exceptId).flatMap((m) => m.peerURLs));
    if (peerURLs.some((u) => taken.has(u))) throw new MergekvError("PeerURLExists");
  }

  private save(): Promise<void> {
    return this.log.putJsonMeta(META_NAME, this.members);
  }
}

function checkURLs(urls: string[]): void {
  if (urls.length === 0) throw new MergekvError("InvalidArgument", "mergekv: at least one peer URL is required");
  for (const u of urls) {
    let parsed: URL | undefined;
    try { parsed = new URL(u); } catch { parsed = undefined; }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || !parsed.port) {
      throw new MergekvError("InvalidArgument", `mergekv: peer URL ${JSON.stringify(u)} must be http(s)://host:port`);
    }
  }
}
