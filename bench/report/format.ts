/** Number formatting shared by the Markdown table and the SVG chart. */

export function fixed(value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function whole(value: number | undefined): string {
  return fixed(value, 0);
}

export function kib(bytes: number | undefined): string {
  return bytes === undefined ? "n/a" : fixed(bytes / 1024, 1);
}

export function ratio(value: number | undefined, reference: number | undefined): string {
  if (value === undefined || reference === undefined || !Number.isFinite(value) || !Number.isFinite(reference) || reference === 0) {
    return "n/a";
  }
  return `${fixed(value / reference, 2)}×`;
}
