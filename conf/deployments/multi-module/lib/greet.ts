// Imported by main.ts from the same bundle.
export function greet(host: string, site: string): string {
  return `Hello from ${host}: ${site}, three modules in one ESZIP (this one is ${import.meta.url})`;
}
