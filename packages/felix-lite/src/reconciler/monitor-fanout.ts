// One netlink monitor shared by every watcher of a Kernel: opened with the first watcher,
// closed with the last, each message translated once and handed to all of them.
import type { MonitorGroup, NetlinkError, RtnlMessage } from '@tabby/netlink';
import { RtnlMonitor } from '@tabby/netlink';

export class MonitorFanout<E> {
  private monitor: RtnlMonitor | undefined;
  private readonly listeners = new Set<(e: E) => void>();

  constructor(
    private readonly netns: string | undefined,
    private readonly groups: readonly MonitorGroup[],
    /** A message as an event, or undefined to drop it. */
    private readonly translate: (m: RtnlMessage) => E | undefined,
    /** Messages were lost: the event that says so. */
    private readonly overrun: (error: NetlinkError) => E,
  ) {}

  /** Adds a watcher; returns the function that removes it. */
  watch(onEvent: (e: E) => void): () => void {
    this.listeners.add(onEvent);
    this.monitor ??= RtnlMonitor.open({
      ...(this.netns !== undefined ? { netns: this.netns } : {}),
      groups: this.groups,
      onMessage: (m) => {
        const e = this.translate(m);
        if (e !== undefined) for (const l of this.listeners) l(e);
      },
      onOverrun: (error) => {
        const e = this.overrun(error);
        for (const l of this.listeners) l(e);
      },
    });
    return () => {
      this.listeners.delete(onEvent);
      if (this.listeners.size === 0) this.close();
    };
  }

  close(): void {
    this.monitor?.close();
    this.monitor = undefined;
    this.listeners.clear();
  }
}
