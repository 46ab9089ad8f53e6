/**
 * The demo player's name and colour, kept per tab in `sessionStorage` (like
 * the client's session tokens), so two tabs of one browser are two players
 * with two looks. The lobby edits it; the room page joins with it.
 *
 * @module kasagi/demo-profile
 */

const KEY = "kasagi:profile";

/** Colours that read well on both the light and the dark theme. */
export const PALETTE = Object.freeze([
  "#E6194B", "#3CB44B", "#4363D8", "#F58231", "#911EB4", "#42D4F4",
  "#F032E6", "#9A6324", "#008080", "#D4A017", "#800000", "#2E8B57",
]);

/** `#RRGGBB`, the arena room type's colour rule. */
export const COLOR_PATTERN = /^#[0-9A-Fa-f]{6}$/;

/**
 * @typedef {{playerName: string, color: string, named?: boolean}} Profile
 *   `named`: the name was typed by the user (else it follows the login)
 */

/**
 * A valid player name: trimmed, 1 to 32 characters (the arena rule), or null.
 *
 * @param {unknown} name
 * @returns {string | null}
 */
export function cleanName(name) {
  if (typeof name !== "string") {
    return null;
  }
  const trimmed = name.trim().slice(0, 32);
  return trimmed.length > 0 ? trimmed : null;
}

/**
 * A fresh profile: the user's name when logged in, else "Guest-1234"; a
 * colour from the palette.
 *
 * @param {string | null} username
 * @param {() => number} [random]
 * @returns {Profile}
 */
export function newProfile(username, random = Math.random) {
  const guest = `Guest-${String(Math.floor(random() * 9000) + 1000)}`;
  return {
    playerName: cleanName(username) ?? guest,
    color: PALETTE[Math.floor(random() * PALETTE.length) % PALETTE.length],
  };
}

/**
 * This tab's profile, created (and stored) on first use.
 *
 * @param {Storage | null} storage `sessionStorage`, or null where it is refused
 * @param {string | null} username
 * @returns {Profile}
 */
export function loadProfile(storage, username) {
  let stored = null;
  try {
    stored = JSON.parse(storage?.getItem(KEY) ?? "null");
  } catch {
    stored = null;
  }
  const name = cleanName(stored?.playerName);
  const color = typeof stored?.color === "string" && COLOR_PATTERN.test(stored.color)
    ? stored.color.toUpperCase()
    : null;
  if (name && color) {
    const named = stored.named === true;
    const login = cleanName(username);
    if (!named && login && name !== login) {
      // chosen for a guest, before logging in: follow the login now
      const profile = { playerName: login, color };
      saveProfile(storage, profile);
      return profile;
    }
    return { playerName: name, color, named };
  }
  const profile = newProfile(username);
  saveProfile(storage, profile);
  return profile;
}

/**
 * @param {Storage | null} storage
 * @param {Profile} profile
 */
export function saveProfile(storage, profile) {
  try {
    storage?.setItem(KEY, JSON.stringify(profile));
  } catch {
    // storage refused (private mode, sandbox): the profile lasts for this page
  }
}

/**
 * Wire a name input and a colour input to the profile; `onChange` gets each
 * valid new profile.
 *
 * @param {{name: HTMLInputElement, color: HTMLInputElement}} inputs
 * @param {Storage | null} storage
 * @param {Profile} profile
 * @param {(profile: Profile) => void} [onChange]
 */
export function bindProfileForm(inputs, storage, profile, onChange = () => {}) {
  let current = { ...profile };
  inputs.name.value = current.playerName;
  inputs.color.value = current.color.toLowerCase();
  const commit = () => {
    const playerName = cleanName(inputs.name.value);
    const color = inputs.color.value.toUpperCase();
    if (!playerName || !COLOR_PATTERN.test(color)) {
      return;
    }
    if (playerName === current.playerName && color === current.color) {
      return;
    }
    const named = current.named === true || playerName !== current.playerName;
    current = { playerName, color, named };
    saveProfile(storage, current);
    onChange(current);
  };
  inputs.name.addEventListener("change", commit);
  inputs.color.addEventListener("input", commit);
  inputs.name.form?.addEventListener("submit", (event) => {
    event.preventDefault();
    commit();
  });
}

/**
 * `sessionStorage`, or null where the browser refuses it.
 *
 * @returns {Storage | null}
 */
export function tabStorage() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}
