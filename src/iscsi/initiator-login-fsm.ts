import { type LoginRequest, type LoginResponse, Stage } from './pdu/login.ts';
import { decodeKeyValues, encodeKeyValues, getKey, type KeyValues } from './text-keys.ts';
import {
  type InitiatorOffer,
  type SessionParams,
  applyAnswers,
  defaultParams,
  initiatorOffers,
} from './negotiation.ts';
import {
  type ChapSecret,
  CHAP_MD5,
  chapResponse,
  decodeBinary,
  encodeBinary,
  newChallenge,
  verifyChapResponse,
} from './chap.ts';
import { serialAdd } from '../util/serial.ts';

// RFC 7143 6.3 and 12.1.3: the initiator side of login, as a state machine that sees only
// decoded PDUs. The session sends each request it returns and feeds it the response.

export interface InitiatorLoginOptions {
  initiatorName: string;
  /** Omit for a discovery session. */
  targetName?: string;
  /** Our CHAP secret (one-way). */
  chap?: ChapSecret;
  /** The target's expected CHAP name and secret, to authenticate it (mutual). */
  mutualChap?: ChapSecret;
  offer: InitiatorOffer;
  isid: Uint8Array;
  itt: number;
  /** The session's first CmdSN: every login request carries it (RFC 7143 11.12.8). */
  cmdSN: number;
}

export type InitiatorLoginStep =
  | { kind: 'send'; request: LoginRequest }
  | { kind: 'complete'; params: SessionParams; tsih: number; statSN: number; expCmdSN: number; maxCmdSN: number }
  | { kind: 'failed'; message: string };

/**
 * The states, each named for the answer it waits for:
 * - `auth-method`: the target's choice of AuthMethod (we offered CHAP,None);
 * - `chap-challenge`: CHAP_I and CHAP_C, after CHAP_A;
 * - `chap-result`: the outcome of our CHAP_N/CHAP_R, and the target's answer to our challenge (mutual);
 * - `operational`: the answers to our operational offers, until the target transits to full feature.
 */
type State = 'auth-method' | 'chap-challenge' | 'chap-result' | 'operational' | 'full' | 'failed';

type Handler = (fsm: InitiatorLoginFsm, keys: KeyValues, res: LoginResponse) => InitiatorLoginStep;

/** What each state does with the target's answer: the transitions, as one table. */
const TRANSITIONS: Readonly<Record<State, Handler>> = {
  'auth-method': (fsm, keys) =>
    getKey(keys, 'AuthMethod') === 'CHAP'
      ? fsm.go('chap-challenge', Stage.SECURITY, false, [['CHAP_A', CHAP_MD5]])
      : fsm.withoutChap(),
  'chap-challenge': (fsm, keys) => fsm.answerChallenge(keys),
  'chap-result': (fsm, keys) => fsm.checkTarget(keys) ?? fsm.go('operational', Stage.OPERATIONAL, true, fsm.offers()),
  operational: (fsm, keys, res) => {
    applyAnswers(keys, fsm.params);
    return res.transit ? fsm.complete(res) : fsm.go('operational', Stage.OPERATIONAL, true, []);
  },
  full: () => ({ kind: 'failed', message: 'login response after login completed' }),
  failed: () => ({ kind: 'failed', message: 'login response after login failed' }),
};

export class InitiatorLoginFsm {
  readonly params: SessionParams = defaultParams();
  private readonly opts: InitiatorLoginOptions;
  private state: State;
  private expStatSN = 0;
  /** Our challenge to the target (mutual CHAP). */
  private mine?: { id: number; challenge: Buffer };

  constructor(opts: InitiatorLoginOptions) {
    this.opts = opts;
    this.params.ownMaxRecvDataSegmentLength = opts.offer.maxRecvDataSegmentLength;
    this.state = opts.chap ? 'auth-method' : 'operational';
  }

  /** The leading Login Request. */
  start(): LoginRequest {
    const o = this.opts;
    const names: KeyValues = [
      ['InitiatorName', o.initiatorName],
      ['SessionType', o.targetName ? 'Normal' : 'Discovery'],
    ];
    if (o.targetName) names.push(['TargetName', o.targetName]);
    if (o.chap) return this.request(Stage.SECURITY, false, [...names, ['AuthMethod', 'CHAP,None']]);
    return this.request(Stage.OPERATIONAL, true, [...names, ...this.offers()]);
  }

  /** The target's answer to the last request: the next request, or the end. */
  handle(res: LoginResponse): InitiatorLoginStep {
    if (res.statusClass !== 0) {
      const why = STATUS_TEXT[`${res.statusClass}/${res.statusDetail}`] ?? '';
      const to = this.opts.targetName ?? 'discovery';
      return this.fail(`login to ${to} refused: status class ${res.statusClass} detail ${res.statusDetail}${why}`);
    }
    this.expStatSN = serialAdd(res.statSN, 1);
    let keys: KeyValues;
    try {
      keys = decodeKeyValues(res.data);
    } catch (e) {
      return this.fail(`the target sent malformed login text: ${(e as Error).message}`);
    }
    return TRANSITIONS[this.state](this, keys, res);
  }

  // ---- steps the table takes ----

  /** Enter `state` and send `keys` in stage `csg`, asking to move on when `transit`. */
  go(state: State, csg: number, transit: boolean, keys: KeyValues): InitiatorLoginStep {
    this.state = state;
    return { kind: 'send', request: this.request(csg, transit, keys) };
  }

  /** The target needs no CHAP: go on, unless we must authenticate it (mutual CHAP, RFC 7143 12.1.3). */
  withoutChap(): InitiatorLoginStep {
    if (this.opts.mutualChap)
      return this.fail('the target chose no CHAP, so it cannot be authenticated as mutual CHAP asks: login refused');
    return this.go('operational', Stage.OPERATIONAL, true, this.offers());
  }

  /** Our operational offers; a discovery session offers only what applies to it. */
  offers(): KeyValues {
    const all = initiatorOffers(this.opts.offer);
    if (this.opts.targetName) return all;
    return all.filter(([k]) => ['HeaderDigest', 'DataDigest', 'MaxRecvDataSegmentLength'].includes(k));
  }

  /** RFC 7143 12.1.3: answer the target's challenge, and challenge it back for mutual CHAP. */
  answerChallenge(keys: KeyValues): InitiatorLoginStep {
    const id = Number(getKey(keys, 'CHAP_I'));
    const challenge = decodeBinary(getKey(keys, 'CHAP_C') ?? '');
    if (!challenge || !Number.isInteger(id)) return this.fail('target sent a malformed CHAP challenge');
    const chap = this.opts.chap!;
    const answer: KeyValues = [
      ['CHAP_N', chap.user],
      ['CHAP_R', encodeBinary(chapResponse(id, chap.secret, challenge))],
    ];
    if (this.opts.mutualChap) {
      this.mine = newChallenge();
      answer.push(['CHAP_I', String(this.mine.id)], ['CHAP_C', encodeBinary(this.mine.challenge)]);
    }
    return this.go('chap-result', Stage.SECURITY, true, answer);
  }

  /** Mutual CHAP: the target must prove it knows the secret (RFC 7143 12.1.3). */
  checkTarget(keys: KeyValues): InitiatorLoginStep | undefined {
    const m = this.opts.mutualChap;
    if (!m || !this.mine) return undefined;
    const r = decodeBinary(getKey(keys, 'CHAP_R') ?? '');
    const ok =
      getKey(keys, 'CHAP_N') === m.user && !!r && verifyChapResponse(this.mine.id, m.secret, this.mine.challenge, r);
    return ok ? undefined : this.fail('the target failed mutual CHAP authentication');
  }

  complete(res: LoginResponse): InitiatorLoginStep {
    this.state = 'full';
    const { tsih, statSN, expCmdSN, maxCmdSN } = res;
    return { kind: 'complete', params: this.params, tsih, statSN, expCmdSN, maxCmdSN };
  }

  private fail(message: string): InitiatorLoginStep {
    this.state = 'failed';
    return { kind: 'failed', message };
  }

  private request(csg: number, transit: boolean, keys: KeyValues): LoginRequest {
    const o = this.opts;
    return {
      transit,
      cont: false,
      csg,
      nsg: csg === Stage.SECURITY ? Stage.OPERATIONAL : Stage.FULL_FEATURE,
      versionMax: 0,
      versionMin: 0,
      isid: o.isid,
      tsih: 0,
      itt: o.itt,
      cid: 0,
      cmdSN: o.cmdSN,
      expStatSN: this.expStatSN,
      data: encodeKeyValues(keys),
    };
  }
}

/** RFC 7143 11.13.5: the login failures a user meets most, in words. */
const STATUS_TEXT: Readonly<Record<string, string>> = {
  '2/1': ' (authentication failure)',
  '2/2': ' (authorization failure: initiator not allowed)',
  '2/3': ' (target not found)',
  '2/7': ' (missing parameter)',
  '3/2': ' (target out of resources)',
};
