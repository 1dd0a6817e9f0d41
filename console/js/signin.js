// The sign-in page: a person signs in to the stage's user pool (SRP, see cognito.js) and the console
// then acts as that user, within its tenant. Shown whenever the stage has a user pool and nobody is
// signed in (and no other caller was chosen in Settings).

import { signIn } from "./cognito.js";
import { errorBox, h } from "./dom.js";

export function signInPage(ctx) {
  const heading = h("h1", { tabindex: -1 }, "Sign in");
  const username = h("input", { id: "signin-username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "signin-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const errors = h("div", { class: "errors", role: "alert" });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "action-form signin" },
    h("label", { for: "signin-username" }, "User"),
    username,
    h("label", { for: "signin-password" }, "Password"),
    password,
    submit,
    errors,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    errors.replaceChildren();
    try {
      await signIn(ctx.config, username.value.trim(), password.value);
      password.value = "";
      await ctx.reconnect(ctx.config);
    } catch (error) {
      errors.replaceChildren(errorBox({ errors: [{ errorType: "SignInFailed", message: error.message }] }));
      submit.disabled = false;
    }
  });
  const others = h(
    "p",
    { class: "hint" },
    `You see the tasks of your tenant only. Stage ${ctx.config.stage || ""}: `,
    ctx.config.apiKey ? h("button", { type: "button", id: "signin-use-key", onclick: () => ctx.choose({ kind: "key" }) }, "use the API key instead (tenant default)") : null,
    " or ",
    h("a", { href: "#/settings" }, "act as an operator (AWS credentials) in Settings"),
    ".",
  );
  ctx.mount(heading, form, others);
  username.focus();
}
