// A child's case code from its id, as the server derives it (sync.client.case_code_for,
// models.children.case_code_for): the 40 highest bits of the UUID as eight base-29 digits, least
// significant first, with a dash after the fourth. So a child registered offline shows its code at once.
const ALPHABET = '23456789ABCDEFGHJKMNPQRSTWXYZ';

export function caseCodeFor(uuid) {
  const hex = String(uuid).replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError('not a UUID');
  let n = parseInt(hex.slice(0, 10), 16);  // 40 bits: exact in a double
  let out = '';
  for (let i = 0; i < 8; i++) {
    out += ALPHABET[n % 29];
    n = Math.floor(n / 29);
  }
  return `${out.slice(0, 4)}-${out.slice(4)}`;
}
