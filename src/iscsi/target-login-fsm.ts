import { type LoginRequest, type LoginResponse, LoginStatus, Stage } from './pdu/login.ts';
import {
  type KeyValues,
  decodeKeyValues,
  encodeKeyValues,
  getKey,
  assertNoDuplicates,
  TextKeyError,
} from './text-keys.ts';
import { type SessionParams, type TargetLimits, defaultParams, answerOffers, OPERATIONAL_KEYS } from './negotiation.ts';
import {
  type ChapSecret,
  CHAP_MD5,
  newChallenge,
  decodeBinary,
  encodeBinary,
  chapResponse,
  verifyChapResponse,
} from './chap.ts';

// RFC 7143 6.3 / 11.12: the target side of login, as a state machine that sees only decoded
// PDUs. States: security (CHAP sub-steps) → operational → full feature, or failed.

export interface LoginPolicy {
  /** Resolve a TargetName to what the login needs, or undefined when unknown. */
  findTarget(
    name: string,
  ): { chap?: ChapSecret; mutualChap?: ChapSecret; allows(initiatorName: string): boolean } | undefined;
  limits: TargetLimits;
  portalGroupTag: number;
}

export type LoginOutcome =
  | { kind: 'continue'; response: Omit<LoginResponse, 'statSN' | 'expCmdSN' | 'maxCmdSN' | 'tsih'> }
  | {
      kind: 'complete';
      response: Omit<LoginResponse, 'statSN' | 'expCmdSN' | 'maxCmdSN' | 'tsih'>;
      result: LoginResult;
    }
  | { kind: 'failed'; response: Omit<LoginResponse, 'statSN' | 'expCmdSN' | 'maxCmdSN' | 'tsih'>; reason: string };

export interface LoginResult {
  initiatorName: string;
  targetName: string | undefined;
  sessionType: 'Normal' | 'Discovery';
  isid: Uint8Array;
  tsih: number;
  params: SessionParams;
  firstCmdSN: number;
}

type ChapState =
  | { step: 'none' }
  | { step: 'method-agreed' }
  | { step: 'challenged'; id: number; challenge: Buffer }
  | { step: 'done' };

const LOGIN_KEYS = new Set([
  'InitiatorName',
  'InitiatorAlias',
  'TargetName',
  'SessionType',
  'AuthMethod',
  'TargetAlias',
  'TargetPortalGroupTag',
]);

export class TargetLoginFsm {
  private readonly policy: LoginPolicy;
  private initiatorName?: string;
  private targetName?: string;
  private sessionType: 'Normal' | 'Discovery' = 'Normal';
  private target?: ReturnType<LoginPolicy['findTarget']>;
  private chap: ChapState = { step: 'none' };
  private securityDone = false;
  private first = true;
  private isid?: Uint8Array;
  private tsih = 0;
  private firstCmdSN = 0;
  private pending: Uint8Array[] = [];
  readonly params: SessionParams = defaultParams();
  private declaredMrdsl = false;

  constructor(policy: LoginPolicy) {
    this.policy = policy;
    this.params.ownMaxRecvDataSegmentLength = policy.limits.maxRecvDataSegmentLength;
  }

  handle(req: LoginRequest): LoginOutcome {
    const base = {
      transit: false,
      cont: false,
      csg: req.csg,
      nsg: req.nsg,
      versionMax: 0,
      versionActive: 0,
      isid: req.isid,
      itt: req.itt,
      statusClass: LoginStatus.SUCCESS[0], // RFC 7143 11.13.5
      statusDetail: LoginStatus.SUCCESS[1],
      data: new Uint8Array(0) as Uint8Array,
    };
    const fail = (status: readonly [number, number], reason: string): LoginOutcome => ({
      kind: 'failed',
      response: { ...base, statusClass: status[0], statusDetail: status[1] },
      reason,
    });

    // RFC 7143 11.12.4: Version-min above the one version (0) this target speaks.
    if (req.versionMin > 0) return fail(LoginStatus.UNSUPPORTED_VERSION, 'unsupported iSCSI version');
    if (this.first) {
      this.isid = req.isid;
      this.tsih = req.tsih;
      this.firstCmdSN = req.cmdSN;
    }
    if (req.csg === 2 || (req.transit && (req.nsg === 2 || req.nsg < req.csg))) {
      return fail(LoginStatus.INITIATOR_ERROR, `bad stage transition CSG=${req.csg} NSG=${req.nsg}`);
    }
    // RFC 7143 11.12.2: text split over PDUs (C=1) is gathered before it is read.
    if (req.cont) {
      this.pending.push(req.data);
      if (this.pending.length > 16) return fail(LoginStatus.INITIATOR_ERROR, 'login text too long');
      return { kind: 'continue', response: { ...base, transit: false } };
    }
    const text = this.pending.length ? Buffer.concat([...this.pending, req.data]) : req.data;
    this.pending = [];
    let keys: KeyValues;
    try {
      keys = decodeKeyValues(text);
      assertNoDuplicates(keys);
    } catch (e) {
      return fail(LoginStatus.INITIATOR_ERROR, e instanceof TextKeyError ? e.message : 'malformed login text');
    }

    const answers: KeyValues = [];
    if (this.first) {
      this.first = false;
      const iname = getKey(keys, 'InitiatorName');
      if (!iname) return fail(LoginStatus.MISSING_PARAMETER, 'InitiatorName missing');
      this.initiatorName = iname;
      const st = getKey(keys, 'SessionType') ?? 'Normal';
      if (st !== 'Normal' && st !== 'Discovery') return fail(LoginStatus.INITIATOR_ERROR, `SessionType ${st}`);
      this.sessionType = st;
      if (st === 'Normal') {
        const tname = getKey(keys, 'TargetName');
        if (!tname) return fail(LoginStatus.MISSING_PARAMETER, 'TargetName missing');
        this.target = this.policy.findTarget(tname);
        if (!this.target) return fail(LoginStatus.NOT_FOUND, `no target ${tname}`);
        if (!this.target.allows(iname))
          return fail(LoginStatus.AUTHORIZATION_FAILURE, `${iname} is not allowed on ${tname}`);
        this.targetName = tname;
        answers.push(['TargetPortalGroupTag', String(this.policy.portalGroupTag)]);
      }
    }
    const needChap = !!this.target?.chap;

    if (req.csg === Stage.SECURITY) {
      const r = this.security(keys, answers, needChap);
      if (r) return fail(r[0], r[1]);
    } else {
      if (needChap && !this.securityDone)
        return fail(LoginStatus.AUTHENTICATION_FAILURE, 'CHAP is required: start in the security stage');
      this.securityDone = true;
    }

    if (req.csg === Stage.OPERATIONAL || (req.csg === Stage.SECURITY && keys.some(([k]) => k in OPERATIONAL_KEYS))) {
      answers.push(...answerOffers(keys, this.params, this.policy.limits));
    }
    for (const [k] of keys) {
      if (!LOGIN_KEYS.has(k) && !(k in OPERATIONAL_KEYS) && !k.startsWith('CHAP_')) answers.push([k, 'NotUnderstood']);
    }

    let transit = req.transit;
    if (transit && req.csg === Stage.SECURITY && needChap && this.chap.step !== 'done') transit = false;
    const nsg = transit ? req.nsg : req.csg;
    const complete = transit && nsg === Stage.FULL_FEATURE;
    if (complete && !this.declaredMrdsl) {
      answers.push(['MaxRecvDataSegmentLength', String(this.policy.limits.maxRecvDataSegmentLength)]);
      this.declaredMrdsl = true;
    }
    if (transit && req.csg === Stage.SECURITY) this.securityDone = true;
    const response = { ...base, transit, csg: req.csg, nsg: transit ? req.nsg : 0, data: encodeKeyValues(answers) };
    if (!complete) return { kind: 'continue', response };
    // A TSIH names a session to add a connection to or reinstate: that needs MaxConnections > 1
    // or ERL 2, which this target does not offer (RFC 7143 6.3.5).
    if (this.tsih !== 0) {
      const refused = fail(
        LoginStatus.SESSION_DOES_NOT_EXIST,
        'login with a TSIH of a session this target does not have',
      );
      return { ...refused, response: { ...refused.response, nsg: 0 } }; // T=0: NSG is reserved (RFC 7143 11.13.1)
    }
    return {
      kind: 'complete',
      response,
      result: {
        initiatorName: this.initiatorName!,
        targetName: this.targetName,
        sessionType: this.sessionType,
        isid: this.isid!,
        tsih: this.tsih,
        params: this.params,
        firstCmdSN: this.firstCmdSN,
      },
    };
  }

  /** RFC 7143 12.1: AuthMethod and the CHAP exchange. Returns a failure status, or undefined. */
  private security(
    keys: KeyValues,
    answers: KeyValues,
    needChap: boolean,
  ): [readonly [number, number], string] | undefined {
    const method = getKey(keys, 'AuthMethod');
    if (method !== undefined) {
      const offered = method.split(',');
      if (needChap) {
        if (!offered.includes('CHAP')) return [LoginStatus.AUTHENTICATION_FAILURE, 'this target requires CHAP'];
        answers.push(['AuthMethod', 'CHAP']);
        this.chap = { step: 'method-agreed' };
      } else if (offered.includes('None')) {
        answers.push(['AuthMethod', 'None']);
        this.chap = { step: 'done' };
      } else {
        answers.push(['AuthMethod', 'Reject']);
        return [LoginStatus.AUTHENTICATION_FAILURE, 'no common AuthMethod'];
      }
    }
    const alg = getKey(keys, 'CHAP_A');
    if (alg !== undefined) {
      if (this.chap.step !== 'method-agreed') return [LoginStatus.INITIATOR_ERROR, 'CHAP_A out of order'];
      if (!alg.split(',').includes(CHAP_MD5))
        return [LoginStatus.AUTHENTICATION_FAILURE, 'only CHAP_A=5 (MD5) is supported'];
      const { id, challenge } = newChallenge();
      answers.push(['CHAP_A', CHAP_MD5], ['CHAP_I', String(id)], ['CHAP_C', encodeBinary(challenge)]);
      this.chap = { step: 'challenged', id, challenge };
    }
    const name = getKey(keys, 'CHAP_N');
    const resp = getKey(keys, 'CHAP_R');
    if (name !== undefined || resp !== undefined) {
      if (this.chap.step !== 'challenged' || !this.target?.chap)
        return [LoginStatus.INITIATOR_ERROR, 'CHAP response out of order'];
      const r = resp === undefined ? undefined : decodeBinary(resp);
      const ok =
        name === this.target.chap.user &&
        r !== undefined &&
        verifyChapResponse(this.chap.id, this.target.chap.secret, this.chap.challenge, r);
      if (!ok) return [LoginStatus.AUTHENTICATION_FAILURE, `CHAP authentication failed for ${name ?? '?'}`];
      // Mutual CHAP: the initiator challenges us back (RFC 7143 12.1.3).
      const ci = getKey(keys, 'CHAP_I');
      const cc = getKey(keys, 'CHAP_C');
      if (ci !== undefined || cc !== undefined) {
        const m = this.target.mutualChap;
        const ch = cc === undefined ? undefined : decodeBinary(cc);
        const id = Number(ci);
        if (!m || ch === undefined || !Number.isInteger(id) || id < 0 || id > 255) {
          return [LoginStatus.AUTHENTICATION_FAILURE, 'mutual CHAP requested but not configured'];
        }
        if (ch.equals(this.chap.challenge)) return [LoginStatus.AUTHENTICATION_FAILURE, 'mutual CHAP challenge reused'];
        answers.push(['CHAP_N', m.user], ['CHAP_R', encodeBinary(chapResponse(id, m.secret, ch))]);
      }
      this.chap = { step: 'done' };
    }
    if (!needChap && this.chap.step === 'none' && method === undefined) this.chap = { step: 'done' };
    return undefined;
  }
}
