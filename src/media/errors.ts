import { FerryError } from '../util/errors.ts';

/**
 * Errors of the media layer (changer, drives, library discovery). Each carries a stable `code`
 * and a message that names the cartridge, element or LUN and says what to do about it.
 */

/** The changer refused or could not do what was asked (ERR_CARTRIDGE_NOT_FOUND, ERR_ELEMENT_FULL…). */
export class ChangerError extends FerryError {}

/** A tape drive is not ready, has no cartridge, or refused a setting (ERR_DRIVE_NO_MEDIUM…). */
export class TapeDriveError extends FerryError {}

/** The library's LUs could not be worked out (ERR_NO_CHANGER, ERR_DRIVE_UNMATCHED…). */
export class DiscoveryError extends FerryError {}

/** Element addresses read as SMC-3 prints them in logs and manuals: 0x1000. */
export function hexAddress(address: number): string {
  return `0x${address.toString(16).padStart(4, '0')}`;
}
