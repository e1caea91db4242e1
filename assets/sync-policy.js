// sync-policy.js: synctray's one failure policy for service workers (a
// classic script: importScripts('/sync-policy.js')). It is the table of
// design §10, the same as the Go classifier (internal/failure), which a
// browser test checks status by status.
//
//   classify(status, mode) → 'delivered' | 'refused' | 'poison' | 'transient'
//                            | 'busy' | 'unauthorized' | 'protocol' | 'redirect'
//   mode 'batch':  a request holding several entries (as protocol v1):
//                  400/413/422 name no entry → 'poison' (split the batch);
//                  404/405/501 and other answers → 'protocol'.
//   mode 'single': one request per entry (HTTP mode): 4xx → 'refused',
//                  409 → 'busy', 3xx → 'redirect'.
//   isTransient(status): true where the entry stays queued and is retried
//                  later (network errors count as transient too).
'use strict';

(() => {
  function classify(status, mode) {
    if (status >= 200 && status <= 299) return 'delivered';
    if (status === 401 || status === 403) return 'unauthorized';
    if (status === 408 || status === 425 || status === 429 || (status >= 500 && status <= 599 && status !== 501)) {
      return 'transient';
    }
    if (mode === 'batch') {
      if (status === 400 || status === 413 || status === 422) return 'poison';
      return 'protocol';
    }
    if (status === 409) return 'busy';
    if (status >= 300 && status <= 399) return 'redirect';
    if (status === 501 || (status >= 400 && status <= 499)) return 'refused';
    return 'protocol';
  }

  function isTransient(status) {
    const k = classify(status, 'single');
    return k === 'transient' || k === 'busy';
  }

  self.synctrayPolicy = { classify, isTransient };
})();
