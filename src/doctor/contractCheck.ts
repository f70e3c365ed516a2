import type { Contract, DoctorCheck } from './doctorCheck.js';
import type { ContractGuess } from './guessContract.js';

const describe = (contract: Contract) => (contract === 'server' ? 'a prediction server' : 'a run-to-completion job');
const describeCommand = (contract: Contract) => (contract === 'server' ? 'a prediction server (vbe batch-predict)' : 'a run-to-completion job (vbe run)');

/** The "Contract" check: which contract the image is checked as, against the guess (pure). */
export function contractCheck(used: Contract, guess: ContractGuess, auto: boolean, staticOnly: boolean): DoctorCheck {
  if (auto && !guess.sure) {
    return { id: 'contract', title: 'Contract', status: 'warn', summary: `unsure which contract it fits (${guess.reasons.join('; ')})${staticOnly ? '; pass --contract files or server' : ': both are checked live'}` };
  }
  if (used === guess.contract) return { id: 'contract', title: 'Contract', status: 'pass', summary: `${describeCommand(used)}: ${guess.reasons.join('; ')}` };
  return { id: 'contract', title: 'Contract', status: 'warn', summary: `checked as ${describe(used)}, but it looks like ${describe(guess.contract)} (${guess.reasons.join('; ')})` };
}

/** The "Contract" check's summary once both contracts were run live because the guess was unsure. */
export function unsureContractSummary(guess: ContractGuess, used: Contract, serverReady: boolean): string {
  return `unsure which contract it fits (${guess.reasons.join('; ')}): both were checked live; ${serverReady || used === 'files' ? `it works as ${describeCommand(used)}` : 'it passed neither'}`;
}

/** The checks of the contract the image did not fit, kept as information (ids prefixed), never failing the report. */
export function otherContract(checks: DoctorCheck[], contract: Contract): DoctorCheck[] {
  return checks.map((c) => ({ ...c, id: `${contract}:${c.id}`, status: c.status === 'fail' ? 'skip' : c.status, summary: `(as ${describe(contract)}) ${c.summary}` }));
}
