// govuk-frontend ships no type declarations; this is the one function the pages call.
declare module 'govuk-frontend' {
  /** Starts every govuk-frontend component found in the page (`data-module="govuk-…"`). */
  export function initAll(config?: Record<string, unknown>): void
}
