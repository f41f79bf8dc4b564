/**
 * Alarms, kept as etcd's alarm store keeps them: at most one per (member,
 * type), raised by Maintenance.Alarm or by the server itself (NOSPACE, when
 * the data directory outgrows --quota-backend-bytes), kept until disarmed,
 * and persisted (meta record "alarms") so that a restart does not drop one.
 * What an active alarm refuses is the API's business (api/services.ts,
 * `refuseUnderAlarms`): NOSPACE refuses writes that add data, CORRUPT every
 * write, as etcd's capped and corrupt appliers do.
 */
import { ChangeLog } from "../persist/changelog";
import { MergekvError } from "../errors";

/** etcd's AlarmType names, as the proto spells them. */
export type AlarmType = "None" | "Nospace" | "Corrupt";
const ALARM_TYPES: readonly AlarmType[] = ["None", "Nospace", "Corrupt"];

export interface AlarmMember {
  /** uint64 as a decimal string. */
  memberId: string;
  alarm: AlarmType;
}

const META_NAME = "alarms";

export class Alarms {
  /** The last write of the record: an answer about an alarm waits for it, so it never reports what a crash could undo. */
  private saved: Promise<void> = Promise.resolve();

  private constructor(private readonly log: ChangeLog, private members: AlarmMember[]) {}

  /** Whether `name` is an alarm type (a gRPC client may send any enum number). */
  static isType(name: unknown): name is AlarmType {
    return ALARM_TYPES.includes(name as AlarmType);
  }

  static async load(log: ChangeLog): Promise<Alarms> {
    const members = (await log.getJsonMeta(META_NAME)) ?? [];
    if (!Array.isArray(members) || !members.every((m: AlarmMember) => typeof m?.memberId === "string" && Alarms.isType(m.alarm))) {
      throw new MergekvError("Corrupt", "the alarms record does not list alarms");
    }
    return new Alarms(log, members);
  }

  /** Whether any member has this alarm raised. */
  has(alarm: AlarmType): boolean {
    return this.members.some((m) => m.alarm === alarm);
  }

  /** The raised alarms of one type, or all of them for "None" (etcd's AlarmStore.Get). */
  get(alarm: AlarmType): AlarmMember[] {
    return this.members.filter((m) => alarm === "None" || m.alarm === alarm).map((m) => ({ ...m }));
  }

  /** Raises an alarm for a member, durable when it resolves; an alarm already raised is returned as it is. */
  async activate(memberId: string, alarm: AlarmType): Promise<{ member: AlarmMember; raised: boolean }> {
    const existing = this.find(memberId, alarm);
    if (existing) {
      await this.saved;
      return { member: { ...existing }, raised: false };
    }
    const member = { memberId, alarm };
    this.members = [...this.members, member];
    await this.save();
    return { member: { ...member }, raised: true };
  }

  /** Disarms a member's alarm, durable when it resolves; undefined if it was not raised. */
  async deactivate(memberId: string, alarm: AlarmType): Promise<AlarmMember | undefined> {
    const existing = this.find(memberId, alarm);
    if (!existing) {
      await this.saved;
      return undefined;
    }
    this.members = this.members.filter((m) => m !== existing);
    await this.save();
    return { ...existing };
  }

  private find(memberId: string, alarm: AlarmType): AlarmMember | undefined {
    return this.members.find((m) => m.memberId === memberId && m.alarm === alarm);
  }

  private save(): Promise<void> {
    this.saved = this.log.putJsonMeta(META_NAME, this.members);
    return this.saved;
  }
}

/**
 * An alarm as etcd prints it (its protobuf text form, zero fields left out):
 * `memberID:5 alarm:NOSPACE `. Status lists these as its errors.
 */
export function alarmText(m: AlarmMember): string {
  return `${m.memberId === "0" ? "" : `memberID:${m.memberId} `}${m.alarm === "None" ? "" : `alarm:${m.alarm.toUpperCase()} `}`;
}
