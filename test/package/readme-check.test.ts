// The README checker (scripts/readme-check.ts): which blocks it takes, and that a block
// that does not compile fails it with the line of the Markdown file it is on.
import t from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { extractBlocks } from '../../scripts/readme-check.js'

t.test('extractBlocks takes ts blocks with the line they start on', async (t) => {
  const markdown = [
    '# Title', //            1
    '```sh', //              2
    'npm install', //        3
    '```', //                4
    '```ts', //              5
    'const a = 1', //        6
    '```', //                7
    '~~~typescript', //      8
    '// server.ts (shared)', // 9
    '```ts', //             10: not a fence closer for ~~~
    '~~~', //               11
    '````ts', //            12
    '```', //               13: too short to close ````
    '````', //              14
    '```text', //           15
    'const b: number = "x"', // 16
    '```', //               17
    '```tsx', //            18
    'const c = <b />', //   19
    '```' //                20
  ].join('\n')
  t.same(extractBlocks(markdown), [
    { line: 6, code: 'const a = 1', file: null },
    { line: 9, code: '// server.ts (shared)\n```ts', file: 'server.ts' },
    { line: 13, code: '```', file: null },
    { line: 19, code: 'const c = <b />', file: null, tsx: true }
  ])
  t.throws(() => extractBlocks('```ts\nconst a = 1\n'), /code fence never closed/)
})

function check (file: string): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'scripts/readme-check.ts', file], (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, stdout, stderr })
    })
  })
}

t.test('a failing block fails the check with its line; file blocks import each other', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'DOC.md')
  writeFileSync(file, [
    'Intro', //                                        1
    '```ts', //                                        2
    '// shared.ts', //                                 3
    "export const greeting: string = 'hi'", //         4
    '```', //                                          5
    '```ts', //                                        6
    "import { greeting } from './shared.js'", //      7
    'app.log.info(greeting) // app: prelude', //       8
    "app.realtime.topic('a/*rest', { message: {} as never }).name({ rest: 'x/y' })", // 9
    '```', //                                         10
    '```ts', //                                       11
    '// file.ts', //                                  12
    'app.log.info(1) // a file gets no prelude', //   13
    'const n: number = "not a number"', //           14
    '```' //                                          15
  ].join('\n'))
  const { code, stdout, stderr } = await check(file)
  t.equal(code, 1, stdout + stderr)
  t.match(stderr, /^DOC\.md:13:1 TS2304: Cannot find name 'app'/m)
  t.match(stderr, /^DOC\.md:14:7 TS2322/m)
  t.notMatch(stderr, /DOC\.md:[2-9]:/, 'the snippet and the file it imports compile')
  t.match(stderr, /2 error\(s\) in DOC\.md's TypeScript blocks/)
})

t.test('a block marked <!-- readme-run: name --> is run by that scenario once the blocks compile', async (t) => {
  t.same(extractBlocks(['<!-- readme-run: hooks -->', '```ts', 'const a = 1', '```', '```ts', 'const b = 2', '```'].join('\n')), [
    { line: 3, code: 'const a = 1', file: null, run: 'hooks' },
    { line: 6, code: 'const b = 2', file: null }
  ])
  const dir = t.testdir({})
  const file = join(dir, 'RUN.md')
  writeFileSync(file, ['Intro', '<!-- readme-run: no-such-scenario -->', '```ts', 'const a: number = 1', '```'].join('\n'))
  const { code, stdout, stderr } = await check(file)
  t.equal(code, 1, stdout + stderr)
  t.match(stdout, /1 TypeScript blocks of RUN\.md type-check/)
  t.match(stderr, /^RUN\.md:2 \(readme-run: no-such-scenario\): no such scenario/m, 'named with the line of its marker')
})
