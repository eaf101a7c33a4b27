// JavaScript evaluated inside each codec's QuickJS context before the codec itself. It
// builds the ChirpStack/TTN input, calls the codec and turns the outcome into one string
// (first letter: R result JSON, B bad result, T threw, M out of memory/stack), so the host
// never walks codec-made objects, whose getters could run unbounded. The builtins it uses
// are captured first; a codec that replaces globals can only spoil its own results, which
// the host validates again (validate.ts). Interrupts are uncatchable, so they pass through.
export const HARNESS = String.raw`(function () {
  'use strict';
  var stringify = JSON.stringify, parse = JSON.parse, getProto = Object.getPrototypeOf;
  var isArray = Array.isArray, from = Array.from, isView = ArrayBuffer.isView;
  var objProto = Object.prototype, U8 = Uint8Array, DateC = Date, IE = InternalError, Str = String;
  var MAX = %MAX%;
  function Bad(msg) { this.msg = msg; }
  function where(key) { return key === '' ? ' as the result' : ' at "' + key + '"'; }
  function json(key, v) {
    var t = typeof v;
    if (v === null || t === 'string' || t === 'boolean') return v;
    if (t === 'number') {
      if (v - v !== 0) throw new Bad('returned a non-finite number' + where(key));
      return v;
    }
    if (t === 'object') {
      var p = getProto(v);
      if (p === objProto || p === null || isArray(v)) return v;
      throw new Bad('returned a non-plain object' + where(key));
    }
    throw new Bad('returned a ' + t + where(key));
  }
  function resource(e) {
    return e instanceof IE && (e.message === 'out of memory' || e.message === 'stack overflow');
  }
  function describe(e) {
    try {
      if (resource(e)) return 'M' + e.message;
      if (e !== null && typeof e === 'object') {
        var s = Str(e.name) + ': ' + Str(e.message);
        var st = typeof e.stack === 'string' ? e.stack.split('\n')[0].trim() : '';
        return 'T' + (s + (st ? ' ' + st : '')).slice(0, 500);
      }
      return 'T' + ('the value ' + Str(e)).slice(0, 500);
    } catch (e2) {
      return resource(e2) ? 'M' + e2.message : 'Tan unprintable value';
    }
  }
  function out(r) {
    if (r === null || typeof r !== 'object') return 'Breturned ' + (r === null ? 'null' : typeof r) + ', not an object';
    var s;
    try {
      s = stringify(r, json);
    } catch (e) {
      if (e instanceof Bad) return 'B' + e.msg;
      if (resource(e) && e.message === 'out of memory') return 'Mout of memory';
      return 'Breturned a result that is not JSON (' + describe(e).slice(1) + ')';
    }
    if (typeof s !== 'string') return 'Breturned a result that is not JSON';
    if (s.length > MAX) return 'Breturned ' + s.length + ' characters of JSON, over ' + MAX;
    return 'R' + s;
  }
  function run(fn, input) {
    var r;
    try {
      r = fn(input);
    } catch (e) {
      return describe(e);
    }
    return out(r);
  }
  return {
    up: function (fn, buf, fPort, ms) {
      return run(fn, { bytes: from(new U8(buf)), fPort: fPort, recvTime: new DateC(ms) });
    },
    down: function (fn, data, fPort) {
      var input = { data: parse(data) };
      if (fPort !== undefined) input.fPort = fPort;
      return run(function (i) {
        var r = fn(i);
        // TTN codecs often hand back a Uint8Array: accept it as the plain array it stands for.
        if (r !== null && typeof r === 'object' && isView(r.bytes)) r.bytes = from(new U8(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength));
        return r;
      }, input);
    },
    describe: describe
  };
})()`;
