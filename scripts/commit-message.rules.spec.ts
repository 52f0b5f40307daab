import { commitMessageProblems, messageLines, stagedChange } from './commit-message.rules';

const small = { files: 1, lines: 4 };
const large = { files: 5, lines: 120 };

describe('commit message rule', () => {
  it('accepts a short subject alone for a small change, and with a body after a blank line for any', () => {
    expect(commitMessageProblems('Fix a typo in the CLI help\n', small)).toEqual([]);
    expect(commitMessageProblems('Split the join\n\nThe join held two locks; now one.\n', large)).toEqual([]);
  });

  it('refuses a subject over 72 characters', () => {
    const subject = 'x'.repeat(73);
    expect(commitMessageProblems(subject, small)).toEqual([
      'the subject is 73 characters; keep it to 72 and put the rest in the body',
    ]);
    expect(commitMessageProblems('x'.repeat(72), small)).toEqual([]);
  });

  it('refuses a second line that is not blank', () => {
    expect(commitMessageProblems('Subject\nbody right under it\n', large)).toEqual([
      'the second line must be blank: it parts subject and body',
    ]);
  });

  it('wants a body when the change touches more than 2 files or 20 lines', () => {
    const problem = (files: number, lines: number) =>
      `this commit changes ${files} files and ${lines} lines: add a body (after a blank line) saying why`;
    expect(commitMessageProblems('Subject only', { files: 3, lines: 6 })).toEqual([problem(3, 6)]);
    expect(commitMessageProblems('Subject only', { files: 1, lines: 21 })).toEqual([problem(1, 21)]);
    expect(commitMessageProblems('Subject only', { files: 2, lines: 20 })).toEqual([]);
    expect(commitMessageProblems('Subject only\n\n\n', { files: 1, lines: 21 })).toEqual([problem(1, 21)]);
  });

  it('reads the message as git stores it: no comments, nothing under the scissors, no blank edges', () => {
    const text =
      '\n# Please enter the commit message\nSubject\n\nWhy.\n# ------------------------ >8 ------------------------\ndiff --git a b\n';
    expect(messageLines(text)).toEqual(['Subject', '', 'Why.']);
    expect(commitMessageProblems('# only comments\n', small)).toEqual(['the message is empty']);
  });

  it("leaves git's own subjects alone", () => {
    expect(commitMessageProblems(`Merge branch '${'b'.repeat(80)}'`, large)).toEqual([]);
    expect(commitMessageProblems('fixup! Split the join', large)).toEqual([]);
  });

  it('sums git diff --numstat, a binary file as a file of no lines', () => {
    expect(stagedChange('3\t1\tREADME.md\n-\t-\tlogo.png\n10\t0\tsrc/a.ts\n')).toEqual({ files: 3, lines: 14 });
    expect(stagedChange('')).toEqual({ files: 0, lines: 0 });
  });
});
