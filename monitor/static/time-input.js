// Every field named "at" (the canned queries', the app page's) is a date-time input, in
// UTC: 2025-01-27T10:00:00Z shows as 27/01/2025 10:00:00 and is sent without its "Z",
// which monitor reads as UTC all the same. A value it cannot show stays as text.
document.addEventListener('DOMContentLoaded', () => {
  for (const input of document.querySelectorAll('input[name="at"]')) {
    const given = input.value
    input.removeAttribute('value')
    input.value = ''
    input.type = 'datetime-local'
    input.step = 1
    input.value = given.replace(/Z$/, '')
    if (given && !input.value) {
      input.type = 'text'
      input.value = given
    }
  }
})
