// SecureForm console: decrypts a submission encrypted to OpenPGP recipients in this browser.
//
// The server sends the OpenPGP messages as stored (after opening its own AES envelope); the
// reader's private key is read from a file input or a text area that belong to no form, is
// unlocked here with its passphrase, and is used here only: nothing on this page sends it
// anywhere. What it decrypts is shown as text (textContent, never markup); files are offered as
// Blob URLs. Closing the tab, or "Forget the key", drops the key and the plaintext.
//
// OpenPGP.js is the vendored copy the page loads first with its recorded integrity; the import
// below resolves to that same, already-checked module. The server replaces the URL below.
import * as openpgp from '__OPENPGP_URL__';

const $ = (id) => document.getElementById(id);
const box = $('decrypt');
const status = $('decrypt-status');
const problem = $('decrypt-problem');
const button = $('decrypt-button');
const keyFile = $('key-file');
const keyText = $('key-text');
const passphrase = $('passphrase');
const plaintext = $('plaintext');
const fieldsBody = document.querySelector('#fields tbody');
const filesList = $('files');
const forget = $('forget');

/** The unlocked private keys: in this tab's memory only, until "Forget the key". */
let keys = null;
/** The Blob URLs made for decrypted files, revoked when the key is forgotten. */
let blobUrls = [];

function say(text) {
  status.textContent = text;
}

function fail(text) {
  problem.textContent = text;
  problem.hidden = false;
}

function clearProblem() {
  problem.textContent = '';
  problem.hidden = true;
}

/** Fetches one OpenPGP message of this submission from the console (the session's cookie). */
async function fetchMessage(url) {
  const res = await fetch(url, { credentials: 'same-origin', cache: 'no-store', redirect: 'manual' });
  if (res.type === 'opaqueredirect' || res.status === 303) {
    throw new Error('Your session has ended: sign in again, then reopen this submission.');
  }
  if (!res.ok) {
    throw new Error(`The server did not send the encrypted document (HTTP ${res.status}).`);
  }
  const binaryMessage = new Uint8Array(await res.arrayBuffer());
  return openpgp.readMessage({ binaryMessage });
}

async function decryptMessage(url) {
  const message = await fetchMessage(url);
  try {
    const { data } = await openpgp.decrypt({ message, decryptionKeys: keys, format: 'binary' });
    return data;
  } catch (e) {
    throw new Error(`This key does not open this document: it is not the private key of one of `
      + `the form's recipients (${e.message})`);
  }
}

/** The key as given: ASCII armor or binary, one key or several; unlocked with the passphrase. */
async function readKeys() {
  let found;
  if (keyFile.files.length > 0) {
    const bytes = new Uint8Array(await keyFile.files[0].arrayBuffer());
    const head = new TextDecoder().decode(bytes.subarray(0, 64));
    found = head.includes('-----BEGIN PGP')
      ? await openpgp.readPrivateKeys({ armoredKeys: new TextDecoder().decode(bytes) })
      : await openpgp.readPrivateKeys({ binaryKeys: bytes });
  } else if (keyText.value.trim() !== '') {
    found = await openpgp.readPrivateKeys({ armoredKeys: keyText.value.trim() });
  } else {
    throw new Error('Choose your private key file, or paste the key.');
  }
  const unlocked = [];
  for (const key of found) {
    if (key.isDecrypted()) {
      unlocked.push(key);
    } else if (passphrase.value === '') {
      throw new Error('This key is protected by a passphrase: type it in "Passphrase".');
    } else {
      try {
        unlocked.push(await openpgp.decryptKey({ privateKey: key, passphrase: passphrase.value }));
      } catch (e) {
        throw new Error(`The passphrase does not unlock this key (${e.message}).`);
      }
    }
  }
  return unlocked;
}

// A JSON reader that keeps the order of an object's keys as written (JavaScript's own objects
// put keys that look like integers first; fields must show in the order received), and a
// number as written (as the server shows it).
class Num {
  constructor(raw) { this.raw = raw; }
}

function parseOrdered(text) {
  JSON.parse(text); // Refuses anything that is not JSON; the reader below then trusts the shape.
  let i = 0;
  const ws = () => { while (' \t\n\r'.includes(text[i]) && i < text.length) i += 1; };
  const string = () => {
    const start = i;
    i += 1;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i += 1;
    return JSON.parse(text.slice(start, i));
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      i += 1;
      const map = new Map();
      ws();
      if (text[i] === '}') { i += 1; return map; }
      for (;;) {
        ws();
        const k = string();
        ws();
        i += 1; // ':'
        map.set(k, value());
        ws();
        if (text[i++] === '}') return map; // else ','
      }
    }
    if (c === '[') {
      i += 1;
      const list = [];
      ws();
      if (text[i] === ']') { i += 1; return list; }
      for (;;) {
        list.push(value());
        ws();
        if (text[i++] === ']') return list; // else ','
      }
    }
    if (c === '"') return string();
    const m = /^(?:true|false|null|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
    i += m[0].length;
    if (m[0] === 'true') return true;
    if (m[0] === 'false') return false;
    if (m[0] === 'null') return null;
    return new Num(m[0]);
  };
  return value();
}

function scalarText(v) {
  if (v instanceof Num) return v.raw;
  return String(v);
}

/**
 * A file name safe to save, by the server's rules (src/file_names.rs, sanitize): the last path
 * component without control characters, invisible formatting characters (zero-width, bidi
 * controls, BOM) or `"<>:|?*;`, leading dots and spaces trimmed, at most 200 UTF-8 bytes.
 */
export function sanitizeFilename(name, n) {
  const parts = String(name).split(/[/\\]/);
  const last = parts[parts.length - 1];
  // eslint-disable-next-line no-control-regex
  let clean = last.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff"<>:|?*;]/g, '');
  clean = clean.trim().replace(/^\.+/, '').trim();
  if (clean === '') return `file-${n}`;
  const encoder = new TextEncoder();
  let kept = '';
  let bytes = 0;
  for (const ch of clean) {
    const size = encoder.encode(ch).length;
    if (bytes + size > 200) break;
    kept += ch;
    bytes += size;
  }
  return kept.trimEnd();
}

function row(name, values) {
  const tr = document.createElement('tr');
  const th = document.createElement('th');
  th.scope = 'row';
  th.textContent = name;
  const td = document.createElement('td');
  td.className = 'value';
  values.forEach((v, k) => {
    if (k > 0) td.append(document.createElement('br'));
    td.append(document.createTextNode(scalarText(v)));
  });
  tr.append(th, td);
  return tr;
}

function fileItem(file, n) {
  const li = document.createElement('li');
  const name = sanitizeFilename(file.get('filename') ?? '', n);
  const size = file.get('size');
  const field = file.get('field') ?? '';
  const label = document.createElement('span');
  label.textContent = `${name} (${size instanceof Num ? size.raw : '?'} bytes, field ${field}) `;
  const get = document.createElement('button');
  get.type = 'button';
  get.className = 'decrypt-file';
  get.textContent = 'Decrypt this file';
  get.setAttribute('aria-label', `Decrypt ${name}`);
  get.addEventListener('click', async () => {
    get.disabled = true;
    clearProblem();
    say(`Decrypting ${name}…`);
    try {
      const bytes = await decryptMessage(`${box.dataset.files}${n}`);
      const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
      blobUrls.push(url);
      const a = document.createElement('a');
      a.className = 'download';
      a.href = url;
      a.download = name;
      a.textContent = `Save ${name}`;
      get.replaceWith(a);
      a.focus();
      say(`${name} is decrypted: "Save ${name}" saves it.`);
    } catch (e) {
      get.disabled = false;
      fail(e.message);
      say('');
    }
  });
  li.append(label, get);
  return li;
}

function render(submission) {
  fieldsBody.replaceChildren();
  const fields = submission.get('fields') ?? new Map();
  for (const [name, v] of fields) {
    fieldsBody.append(row(name, Array.isArray(v) ? v : [v]));
  }
  if (fields.size === 0) fieldsBody.append(row('(no fields)', []));
  filesList.replaceChildren();
  const files = submission.get('files') ?? [];
  files.forEach((f, n) => filesList.append(fileItem(f, n)));
  if (files.length === 0) {
    const li = document.createElement('li');
    li.textContent = 'No files.';
    filesList.append(li);
  }
  plaintext.hidden = false;
}

button.addEventListener('click', async () => {
  clearProblem();
  button.disabled = true;
  say('Reading the key…');
  try {
    keys = await readKeys();
    // The key is unlocked and held in memory: the fields that held it are emptied.
    keyText.value = '';
    passphrase.value = '';
    keyFile.value = '';
    say('Decrypting the submission…');
    const bytes = await decryptMessage(box.dataset.submission);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    render(parseOrdered(text));
    say('Decrypted in this browser. The key stays in this tab until you close it or forget it.');
    forget.hidden = false;
    $('fields').focus();
  } catch (e) {
    keys = null;
    fail(e.message);
    say('Not decrypted.');
  } finally {
    button.disabled = false;
  }
});

forget.addEventListener('click', () => {
  keys = null;
  blobUrls.forEach((u) => URL.revokeObjectURL(u));
  blobUrls = [];
  fieldsBody.replaceChildren();
  filesList.replaceChildren();
  plaintext.hidden = true;
  forget.hidden = true;
  clearProblem();
  say('The key and the decrypted submission are forgotten.');
  button.focus();
});

window.addEventListener('pagehide', () => {
  keys = null;
  blobUrls.forEach((u) => URL.revokeObjectURL(u));
});

// Enter in the passphrase field decrypts, as it would in a form (there is none: nothing posts).
passphrase.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !button.disabled) {
    e.preventDefault();
    button.click();
  }
});

button.disabled = false;
box.dataset.ready = 'true';
say(`Ready: OpenPGP.js ${openpgp.config.versionString.replace(/^OpenPGP\.js /, '')} is loaded.`);
