// Counts results the way cache-tests.fyi shows them: for each file given, how many tests
// passed, failed (required), failed (optimal), and the checks' yes/no; and, for the first two
// files, the tests where they differ.
import fs from 'fs'
import tests from 'http-cache-tests/tests/index.mjs'
import { determineTestResult } from 'http-cache-tests/lib/display.mjs'

const names = { '✅': 'pass', '⛔️': 'fail', '⚠️': 'optional_fail', Y: 'yes', N: 'no', '🔹': 'setup_fail',
  '⁉️': 'harness_fail', '⚪️': 'dependency_fail', '↻': 'retry', '-': 'untested' }
const files = process.argv.slice(2)
const all = files.map(f => JSON.parse(fs.readFileSync(f, 'utf8')))
const ids = tests.flatMap(s => s.tests.map(t => t.id))
const verdicts = all.map(results => Object.fromEntries(ids.map(id =>
  [id, names[determineTestResult(tests, id, results)[2]] || 'other'])))
files.forEach((f, i) => {
  const counts = {}
  for (const id of ids) counts[verdicts[i][id]] = (counts[verdicts[i][id]] || 0) + 1
  console.log(`${f}: ${JSON.stringify(counts)}`)
})
// With MIN_PASS / MAX_FAIL set, the first file must reach them (the exit status says).
let status = 0
const first = Object.values(verdicts[0] || {})
const count = v => first.filter(x => x === v).length
if (process.env.MIN_PASS && count('pass') < Number(process.env.MIN_PASS)) {
  console.log(`FAIL: ${count('pass')} passes, fewer than ${process.env.MIN_PASS}`)
  status = 1
}
if (process.env.MAX_FAIL && count('fail') > Number(process.env.MAX_FAIL)) {
  console.log(`FAIL: ${count('fail')} required failures, more than ${process.env.MAX_FAIL}`)
  status = 1
}
process.on('exit', () => { process.exitCode = status })
if (files.length >= 2) {
  for (const id of ids) {
    const [a, b] = [verdicts[0][id], verdicts[1][id]]
    if (a !== b && (a === 'pass' || b === 'pass' || a === 'fail' || b === 'fail')) console.log(`  ${id}: ${a} vs ${b}`)
  }
}
