import type { StateStore } from "../state/store.js";
import type { Incident, Member } from "./incident.js";

/**
 * How incidents are kept in the state store: one record per incident and one per member, so a change
 * to one member of a big incident (a storm fills 50) writes that member, not the whole incident again.
 *
 *   alerts/incidents/<id>         the incident without its members
 *   alerts/incidents/<id>/<nnn>   its members, nnn their order of arrival (the order they are shown in)
 */
export const INCIDENTS = "alerts/incidents/";

type IncidentRecord = Omit<Incident, "members"> & { members?: undefined };

interface MemberRecord {
  key: string;
  member: Member;
}

const memberRecordKey = (incidentId: string, ordinal: number): string =>
  `${INCIDENTS}${incidentId}/${String(ordinal).padStart(3, "0")}`;

/**
 * The entries that store an incident: its record and the members named in `changed`. The members come
 * first: a store that writes a long batch in parts (Consul) and stops midway leaves the previous
 * record of the incident with some newer members, never a record naming what was not written.
 */
export function incidentEntries(
  incident: Incident,
  changed: ReadonlySet<string>,
): Array<readonly [key: string, value: unknown]> {
  const entries: Array<readonly [string, unknown]> = [];
  if (changed.size > 0) {
    let ordinal = 0;
    for (const key in incident.members) {
      if (changed.has(key))
        entries.push([memberRecordKey(incident.id, ordinal), { key, member: incident.members[key]! }]);
      ordinal++;
    }
  }
  // (A spread, then members left out by JSON: much cheaper than a rest pattern.)
  const record: IncidentRecord = { ...incident, members: undefined };
  entries.push([INCIDENTS + incident.id, record]);
  return entries;
}

/** Every stored incident with its members; members left without their incident are deleted. */
export async function loadIncidents(store: StateStore): Promise<Incident[]> {
  const incidents = new Map<string, Incident>();
  const members: Array<{ storageKey: string; incidentId: string; ordinal: number; record: MemberRecord }> =
    [];
  for (const { key, value } of await store.list<IncidentRecord | MemberRecord>(INCIDENTS)) {
    const [incidentId = "", ordinal] = key.slice(INCIDENTS.length).split("/");
    if (ordinal === undefined) incidents.set(incidentId, { ...(value as IncidentRecord), members: {} });
    else
      members.push({ storageKey: key, incidentId, ordinal: Number(ordinal), record: value as MemberRecord });
  }
  members.sort((a, b) => a.ordinal - b.ordinal);
  for (const { storageKey, incidentId, record } of members) {
    const incident = incidents.get(incidentId);
    if (incident) incident.members[record.key] = record.member;
    else await store.delete(storageKey);
  }
  return [...incidents.values()];
}

export async function deleteIncident(store: StateStore, incident: Incident): Promise<void> {
  await store.delete(INCIDENTS + incident.id);
  const count = Object.keys(incident.members).length;
  for (let ordinal = 0; ordinal < count; ordinal++) await store.delete(memberRecordKey(incident.id, ordinal));
}
