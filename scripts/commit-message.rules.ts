/**
 * The project's rule for commit messages (CONTRIBUTING.md), checked by the commit-msg hook (.githooks/commit-msg):
 * a subject of at most 72 characters, a blank line after it when more follows, and a body saying why for a commit
 * that is not trivial — one that touches more than TRIVIAL_FILES files or TRIVIAL_LINES lines.
 */
export const MAX_SUBJECT = 72;
export const TRIVIAL_FILES = 2;
export const TRIVIAL_LINES = 20;

/** What the commit changes, from `git diff --cached --numstat`. */
export interface StagedChange {
  files: number;
  /** Lines added and deleted. */
  lines: number;
}

/** Subjects git or its tools write, which the rule leaves alone. */
const GENERATED = /^(Merge |Revert "|fixup! |squash! |amend! )/;

/** The message as git will store it: comment lines and everything below the scissors line dropped. */
export function messageLines(text: string): string[] {
  const lines = text.split(/\r?\n/);
  const scissors = lines.findIndex((line) => /^# -+ >8 -+$/.test(line));
  const kept = (scissors >= 0 ? lines.slice(0, scissors) : lines).filter((line) => !line.startsWith('#'));
  while (kept.length > 0 && kept[kept.length - 1].trim() === '') kept.pop();
  while (kept.length > 0 && kept[0].trim() === '') kept.shift();
  return kept;
}

/** What is wrong with a commit message for this change; empty when nothing is. */
export function commitMessageProblems(text: string, change: StagedChange): string[] {
  const [subject = '', ...rest] = messageLines(text);
  if (subject === '') return ['the message is empty'];
  if (GENERATED.test(subject)) return [];
  const problems: string[] = [];
  if (subject.length > MAX_SUBJECT)
    problems.push(
      `the subject is ${subject.length} characters; keep it to ${MAX_SUBJECT} and put the rest in the body`,
    );
  if (rest.length > 0 && rest[0].trim() !== '')
    problems.push('the second line must be blank: it parts subject and body');
  const body = rest.some((line) => line.trim() !== '');
  if (!body && (change.files > TRIVIAL_FILES || change.lines > TRIVIAL_LINES))
    problems.push(
      `this commit changes ${change.files} files and ${change.lines} lines: add a body (after a blank line) saying why`,
    );
  return problems;
}

/** `git diff --cached --numstat` summed: binary files count as one file and no lines. */
export function stagedChange(numstat: string): StagedChange {
  const rows = numstat.split('\n').filter((row) => row.trim() !== '');
  const lines = rows.reduce((sum, row) => {
    const [added, deleted] = row.split('\t');
    return sum + (Number(added) || 0) + (Number(deleted) || 0);
  }, 0);
  return { files: rows.length, lines };
}
