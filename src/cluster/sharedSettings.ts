/**
 * Settings every node of one cluster must hold alike. Clients reach whichever node the balancer picks, so
 * two nodes that disagree answer the same request differently: a node without token keys takes the
 * publishes the others refuse, a lower MAX_STATE_BYTES leaves out state patches the others apply, and a
 * node started with another RETENTION would change how long the one log keeps every match's events.
 * Each node announces its own values in its membership entry (MemberInfo.settings) and compares the
 * others' with them. Pure.
 */

export type SettingValue = string | number | boolean;

/** Values by the variable an operator sets them with (`TOKENS`: whether publishing needs a token). */
export type SharedSettings = Readonly<Record<string, SettingValue>>;

export interface SettingDifference {
  setting: string;
  here: SettingValue;
  there: SettingValue;
}

/**
 * Where `there` differs from `here`, in `here`'s order. A setting only one side announces (a node older
 * or newer than this one) is not compared, nor is an entry without settings at all.
 */
export function settingDifferences(here: SharedSettings, there: SharedSettings | undefined): SettingDifference[] {
  if (there === undefined) return [];
  const out: SettingDifference[] = [];
  for (const [setting, value] of Object.entries(here)) {
    const theirs = there[setting];
    if (theirs !== undefined && theirs !== value) out.push({ setting, here: value, there: theirs });
  }
  return out;
}

/** `RETENTION 3600000 there, 86400000 here; TOKENS off there, required here`: for one log line. */
export function describeDifferences(differences: readonly SettingDifference[]): string {
  return differences.map((d) => `${d.setting} ${String(d.there)} there, ${String(d.here)} here`).join("; ");
}
