/**
 * The commit-msg hook's check (.githooks/commit-msg runs it): the message file git passes, against the staged change.
 *
 *   tsx scripts/commit-msg.ts .git/COMMIT_EDITMSG
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { commitMessageProblems, stagedChange } from './commit-message.rules';

const [file] = process.argv.slice(2);
if (!file) throw new Error('usage: tsx scripts/commit-msg.ts <message file>');
const numstat = execFileSync('git', ['diff', '--cached', '--numstat'], { encoding: 'utf8' });
const problems = commitMessageProblems(readFileSync(file, 'utf8'), stagedChange(numstat));
if (problems.length > 0) {
  process.stderr.write(
    `commit message: ${problems.join('; ')}.\n(See CONTRIBUTING.md; the message is kept in ${file}.)\n`,
  );
  process.exit(1);
}
