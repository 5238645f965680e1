/**
 * Made-up clubs and squads for the demo producer. Clubs are a town plus a traditional suffix, so a
 * few hundred distinct names exist and 120 simultaneous matches never field one club twice. A club's
 * squad is derived from its name, so it is the same in every match it plays, and no two players share a name.
 */
import { seededRandom } from "./seededRandom.ts";

const TOWNS = [
  "Ashford",
  "Barrowmouth",
  "Blackwater",
  "Bramhall",
  "Brightmoor",
  "Caldergate",
  "Carrickfield",
  "Castleford",
  "Claymore",
  "Coldharbour",
  "Craigmoor",
  "Dunmere",
  "Eastmarsh",
  "Elmbridge",
  "Fallowfield",
  "Fenwick",
  "Glenrock",
  "Greyhaven",
  "Hartlepool Bay",
  "Hawksmoor",
  "Highcliffe",
  "Hollowell",
  "Ironbridge",
  "Kingsholm",
  "Kirkstall",
  "Lakeside",
  "Langford",
  "Lowmoor",
  "Marlow Vale",
  "Millbrook",
  "Moorgate",
  "Netherby",
  "Northbridge",
  "Oakham",
  "Oldcastle",
  "Pendleford",
  "Porthaven",
  "Queensferry",
  "Ravenscar",
  "Redcliff",
  "Riverside",
  "Rockport",
  "Saltmarsh",
  "Seabrook",
  "Shelford",
  "Southwick",
  "Stonehill",
  "Stourton",
  "Thornbury",
  "Torbay",
  "Upton Park",
  "Wakeford",
  "Westhaven",
  "Whitmore",
  "Willowdale",
  "Windmere",
  "Woodbridge",
  "Wrexby",
  "Yarmouth Sands",
  "Yewbury",
];

const SUFFIXES = ["United", "City", "Rovers", "Athletic", "Wanderers", "Albion", "Town", "County"];

const FIRST_NAMES = [
  "Aaron",
  "Adama",
  "Alejandro",
  "Ali",
  "Andrés",
  "Ben",
  "Bruno",
  "Callum",
  "Chidi",
  "Connor",
  "Dani",
  "Darius",
  "Declan",
  "Diego",
  "Elias",
  "Emeka",
  "Enzo",
  "Erling",
  "Felipe",
  "Finn",
  "Gabriel",
  "Harry",
  "Hugo",
  "Ibrahim",
  "Idrissa",
  "Jack",
  "Jamal",
  "João",
  "Jonas",
  "Jude",
  "Kai",
  "Kenji",
  "Kofi",
  "Leon",
  "Liam",
  "Luca",
  "Lucas",
  "Luis",
  "Marcus",
  "Mateo",
  "Matías",
  "Mohammed",
  "Moussa",
  "Nathan",
  "Nico",
  "Noah",
  "Oliver",
  "Omar",
  "Oscar",
  "Pablo",
  "Rafael",
  "Reece",
  "Ruben",
  "Sami",
  "Sandro",
  "Sven",
  "Theo",
  "Tomás",
  "Victor",
  "Youssef",
  "Zane",
  "Adrien",
  "Amadou",
  "Bastian",
  "Cesc",
  "Dejan",
  "Emil",
  "Fabio",
  "Goran",
  "Hakim",
  "Isak",
  "Jesper",
  "Kasper",
  "Lamine",
  "Mikel",
  "Nuno",
  "Ousmane",
  "Pedro",
  "Rasmus",
  "Stefan",
  "Tariq",
];

const SURNAMES = [
  "Adeyemi",
  "Alvarez",
  "Andersen",
  "Bakayoko",
  "Barnes",
  "Bellamy",
  "Bergström",
  "Carvalho",
  "Castillo",
  "Clarke",
  "Costa",
  "Coulibaly",
  "Da Silva",
  "Diallo",
  "Dimitrov",
  "Dubois",
  "Eriksen",
  "Fernandes",
  "Fischer",
  "Fofana",
  "Gallagher",
  "García",
  "Gomez",
  "Hansen",
  "Harrison",
  "Hughes",
  "Ivanović",
  "Jansen",
  "Kane",
  "Kimura",
  "Koné",
  "Kovač",
  "Larsen",
  "Lindqvist",
  "Lopes",
  "Mahrez",
  "Martínez",
  "McCarthy",
  "Mendy",
  "Morales",
  "Mwangi",
  "Nakamura",
  "Nielsen",
  "Novak",
  "Nwosu",
  "O'Brien",
  "Okafor",
  "Olsen",
  "Osei",
  "Park",
  "Pereira",
  "Petrović",
  "Quinn",
  "Ramos",
  "Reyes",
  "Rossi",
  "Santos",
  "Schmidt",
  "Silva",
  "Sørensen",
  "Suárez",
  "Traoré",
  "Van Dijk",
  "Vargas",
  "Walker",
  "Weber",
  "Yilmaz",
  "Zielinski",
  "Abara",
  "Berg",
  "Camara",
  "Doherty",
  "Eze",
  "Fontaine",
  "Grant",
  "Haaland",
  "Iheanacho",
  "Jovanović",
  "Keller",
  "Lukaku",
];

export type Position = "GK" | "DF" | "MF" | "FW";

export interface Player {
  name: string;
  position: Position;
}

export interface Team {
  name: string;
  /** Eleven starters, in the order GK, four defenders, four midfielders, two forwards. */
  starters: Player[];
  bench: Player[];
}

const LINE_UP: Position[] = ["GK", "DF", "DF", "DF", "DF", "MF", "MF", "MF", "MF", "FW", "FW"];
const BENCH: Position[] = ["GK", "DF", "DF", "MF", "MF", "FW", "FW"];

/** Every club name, built once. */
export const CLUBS: readonly string[] = TOWNS.flatMap((town, i) =>
  // Each town gets five of the suffixes, varied by town, so the list reads like a real league pyramid.
  [0, 2, 3, 5, 6].map((k) => `${town} ${SUFFIXES[(i + k) % SUFFIXES.length]!}`),
);

/** FNV-1a: a stable small hash so a club's squad is the same on every run. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Every (first name, surname) pair in a fixed shuffled order; club k takes the names at positions
 * k*18 to k*18+17, so no two players in the league share a name.
 */
const NAME_ORDER: readonly string[] = (() => {
  const all = FIRST_NAMES.flatMap((f) => SURNAMES.map((l) => `${f} ${l}`));
  const rand = seededRandom(hash("touchline-league"));
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all;
})();

const SQUAD_SIZE = LINE_UP.length + BENCH.length;

export function squadOf(club: string): Team {
  const k = CLUBS.indexOf(club);
  // A club outside the list (none in the demo) still gets a stable squad, just not a unique one.
  const base = (k >= 0 ? k * SQUAD_SIZE : hash(club)) % NAME_ORDER.length;
  let next = 0;
  const player = (position: Position): Player => ({ name: NAME_ORDER[(base + next++) % NAME_ORDER.length]!, position });
  return { name: club, starters: LINE_UP.map(player), bench: BENCH.map(player) };
}
