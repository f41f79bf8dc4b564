/**
 * Alarms, as etcd's Maintenance.Alarm reports them. NOSPACE is raised when
 * the data directory outgrows --quota-backend-bytes; while it is active,
 * Puts, Txns that put, and lease grants are refused (reads and deletes are
 * not, so an operator can free space), as etcd does.
 */
export type AlarmType = "Nospace" | "Corrupt";

export class Alarms {
  private readonly active = new Set<AlarmType>();

  has(alarm: AlarmType): boolean {
    return this.active.has(alarm);
  }

  list(): AlarmType[] {
    return [...this.active];
  }

  /** Returns true if the alarm was not active before. */
  activate(alarm: AlarmType): boolean {
    if (this.active.has(alarm)) return false;
    this.active.add(alarm);
    return true;
  }

  deactivate(alarm: AlarmType): void {
    this.active.delete(alarm);
  }
}
