// Sign-in to the stage's user pool with amazon-cognito-identity-js (vendored: USER_SRP_AUTH, so the
// password is proven, never sent; pinned in package.json, served from /console/vendor/). Tokens are
// kept in sessionStorage: closing the tab signs out, as the Settings values are forgotten.
// The library refreshes the ID token from the refresh token when it has expired (getSession).

import { poolOf } from "./caller.js";

const LIBRARY = "vendor/amazon-cognito-identity.min.js";
let loading = null;

/** The vendored library (a UMD bundle: it sets `self.AmazonCognitoIdentity`), loaded once. */
function library() {
  if (globalThis.AmazonCognitoIdentity) return Promise.resolve(globalThis.AmazonCognitoIdentity);
  loading ||= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = LIBRARY;
    script.onload = () => resolve(globalThis.AmazonCognitoIdentity);
    script.onerror = () => reject(new Error(`cannot load ${LIBRARY} (run make install)`));
    document.head.append(script);
  });
  return loading;
}

async function userPool(config) {
  const { CognitoUserPool } = await library();
  return new CognitoUserPool({ ...poolOf(config), Storage: sessionStorage });
}

/** The signed-in user's valid session (refreshed when its ID token expired), or null. */
async function currentSession(config) {
  const user = (await userPool(config)).getCurrentUser();
  if (!user) return null;
  return new Promise((resolve) => user.getSession((error, session) => resolve(error || !session || !session.isValid() ? null : session)));
}

/** A valid ID token of the signed-in user, or null when nobody is signed in (or the session ended). */
export async function idToken(config) {
  if (!poolOf(config)) return null;
  const session = await currentSession(config);
  return session ? session.getIdToken().getJwtToken() : null;
}

/** Sign in with USER_SRP_AUTH; resolves to the ID token, rejects with the pool's message. */
export async function signIn(config, username, password) {
  const { AuthenticationDetails, CognitoUser } = await library();
  const user = new CognitoUser({ Username: username, Pool: await userPool(config), Storage: sessionStorage });
  const details = new AuthenticationDetails({ Username: username, Password: password });
  return new Promise((resolve, reject) =>
    user.authenticateUser(details, {
      onSuccess: (session) => resolve(session.getIdToken().getJwtToken()),
      onFailure: (error) => reject(new Error(error.message || String(error))),
      newPasswordRequired: () => reject(new Error(`${username} must set a new password first (aws cognito-idp admin-set-user-password --permanent)`)),
      mfaRequired: () => reject(new Error("multi-factor sign-in is not supported by the console")),
      totpRequired: () => reject(new Error("multi-factor sign-in is not supported by the console")),
    }),
  );
}

/** Forget the user's tokens in this tab. */
export async function signOut(config) {
  if (!poolOf(config)) return;
  const user = (await userPool(config)).getCurrentUser();
  if (user) user.signOut();
}
