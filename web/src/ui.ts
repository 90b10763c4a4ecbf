// Small helpers the page modules share: status lines in `aria-live` regions, the GOV.UK error
// summary, sizes in words. All text goes in with textContent: nothing is parsed as HTML.

/** The element with `id`, or an error naming it (the page and the script disagree). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id)
  if (!el) throw new Error(`this page has no element #${id}`)
  return el as T
}

/** Writes `message` into a live region (the region itself is in the page's markup). */
export function say(region: HTMLElement, message: string): void {
  if (!region.hasAttribute('aria-live')) region.setAttribute('aria-live', 'polite')
  region.textContent = message
}

export interface Problem {
  text: string
  /** The field the problem is about (`#identity`), linked from the summary. */
  field?: string
}

/** Shows the GOV.UK error summary `summary` with these problems, and moves focus to it. */
export function showErrors(summary: HTMLElement, problems: Problem[]): void {
  let list = summary.querySelector<HTMLUListElement>('.govuk-error-summary__list')
  if (!list) {
    const body = summary.querySelector('.govuk-error-summary__body') ?? summary
    list = document.createElement('ul')
    list.className = 'govuk-list govuk-error-summary__list'
    body.append(list)
  }
  list.replaceChildren(
    ...problems.map((p) => {
      const li = document.createElement('li')
      if (p.field) {
        const a = document.createElement('a')
        a.href = p.field
        a.textContent = p.text
        li.append(a)
      } else {
        li.textContent = p.text
      }
      return li
    }),
  )
  summary.hidden = false
  summary.classList.remove('govuk-!-display-none')
  if (!summary.hasAttribute('tabindex')) summary.setAttribute('tabindex', '-1')
  summary.focus()
}

/** Hides the error summary again. */
export function clearErrors(summary: HTMLElement): void {
  summary.hidden = true
  summary.querySelector('.govuk-error-summary__list')?.replaceChildren()
}

/** `1.5 MB`, `320 bytes`. */
export function bytes(n: number): string {
  if (n < 1000) return n === 1 ? '1 byte' : `${n} bytes`
  const units = ['kB', 'MB', 'GB', 'TB']
  let v = n
  let unit = 'bytes'
  for (const u of units) {
    if (v < 1000) break
    v /= 1000
    unit = u
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${unit}`
}

/** The message of anything thrown. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

/** A GOV.UK button. */
export function govukButton(id: string, label: string, secondary = false): HTMLButtonElement {
  const b = document.createElement('button')
  b.type = 'button'
  b.id = id
  b.className = secondary ? 'govuk-button govuk-button--secondary' : 'govuk-button'
  b.setAttribute('data-module', 'govuk-button')
  b.textContent = label
  return b
}

/** Resolves when `button` is next pressed. */
export function pressed(button: HTMLButtonElement): Promise<void> {
  return new Promise((resolve) => button.addEventListener('click', () => resolve(), { once: true }))
}
