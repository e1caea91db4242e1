// uuid.js: UUIDv7 keys for the bundled app's ES modules. The one
// implementation is /synctray/uuid7.js, a classic script that the service
// workers load with importScripts too; importing it here runs it once in
// this page.
import '/synctray/uuid7.js';

export const { uuidv7, uuidTime } = self.synctrayUUID;
