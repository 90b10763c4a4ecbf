// The pages' one script (`/assets/app.js`, an ES module on every page). It marks the body so
// govuk-frontend's styles for scripted components apply, starts govuk-frontend's components,
// then runs the code of the page named by `<main data-page="…">`. Pages that need no
// cryptography work without it.

import { initAll } from 'govuk-frontend'
import { collectPage } from './collect.ts'
import { keysPage } from './keys.ts'
import { sendPage } from './send.ts'
import { signingKeysPage } from './signing.ts'
import { verifyStatus } from './verify.ts'

document.body.classList.add('js-enabled', 'govuk-frontend-supported')
initAll()

const main = document.querySelector<HTMLElement>('main[data-page]')
switch (main?.dataset.page) {
  case 'collect':
    collectPage(main)
    break
  case 'send':
    sendPage()
    break
}
// Page parts that may appear on more than one page.
if (document.getElementById('make-browser-key')) keysPage()
if (document.getElementById('make-signing-key')) signingKeysPage()
if (document.getElementById('verify-status')) void verifyStatus()
