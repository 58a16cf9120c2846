// A minimal host for ODK Web Forms, as an OpenRosa client would be: it downloads a form from the
// server's /odk, renders it with the real engine, and posts the instance the engine produces to
// /odk/submission. window.odkHost tells the test what happened.
import { createApp, h } from "vue";
import { OdkWebForm, webFormsPlugin } from "/engine/node_modules/@getodk/web-forms/dist/index.js";

const formId = new URLSearchParams(location.search).get("form");
window.odkHost = { loaded: false, submissions: [] };

const formXml = await (await fetch(`/odk/forms/${formId}.xml`)).text();

async function fetchFormAttachment(url) {
  const name = String(url).split("/").pop();
  return fetch(`/odk/forms/${formId}/media/${name}`);
}

async function onSubmit(payload, callback) {
  const [data] = payload.data;
  const response = await fetch("/odk/submission", { method: "POST", body: data });
  const text = await response.text();
  window.odkHost.submissions.push({ status: response.status, text, xml: await data.get("xml_submission_file").text() });
  callback({ status: response.ok ? "success" : "failure" });
}

createApp({ render: () => h(OdkWebForm, { formXml, fetchFormAttachment, onSubmit }) })
  .use(webFormsPlugin)
  .mount("#app");
window.odkHost.loaded = true;
