import { escapeXml, malformedXml } from "./errors.js";

/** Just enough XML for the S3 operations the double serves: building responses, reading two requests. */

const XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>';
const S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/";

export const tag = (name: string, ...children: string[]): string => `<${name}>${children.join("")}</${name}>`;

/** An element with escaped text, or nothing when the value is undefined. */
export const text = (name: string, value: string | number | boolean | undefined): string =>
  value === undefined ? "" : `<${name}>${escapeXml(String(value))}</${name}>`;

export const xmlDocument = (root: string, ...children: string[]): string =>
  `${XML_HEADER}<${root} xmlns="${S3_NAMESPACE}">${children.join("")}</${root}>`;

function decodeEntities(value: string): string {
  return value.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_, entity: string) => {
    if (entity.startsWith("#x")) return String.fromCodePoint(parseInt(entity.slice(2), 16));
    if (entity.startsWith("#")) return String.fromCodePoint(parseInt(entity.slice(1), 10));
    return { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" }[entity] ?? "";
  });
}

/** The content of the document's root element, which must be `root`; undefined for an empty body. */
function rootContent(xml: string, root: string): string | undefined {
  const body = xml.replace(/^\s*<\?xml[^>]*\?>/, "").trim();
  if (body === "") return undefined;
  const match = new RegExp(`^<${root}(?:\\s[^>]*)?>([\\s\\S]*)</${root}\\s*>$`).exec(body);
  if (!match) throw malformedXml(`expected a ${root} document`);
  return match[1] ?? "";
}

const child = (content: string, name: string): string | undefined => {
  const match = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(content);
  return match?.[1] === undefined ? undefined : decodeEntities(match[1]);
};

export interface DeleteRequest {
  readonly quiet: boolean;
  readonly keys: string[];
}

/** The DeleteObjects body: <Delete><Quiet/>?<Object><Key/></Object>…</Delete>. */
export function parseDeleteRequest(xml: string): DeleteRequest {
  const content = rootContent(xml, "Delete");
  if (content === undefined) throw malformedXml("empty body");
  const keys = [...content.matchAll(/<Object>([\s\S]*?)<\/Object>/g)].map((object) => {
    const key = child(object[1] ?? "", "Key");
    if (key === undefined) throw malformedXml("Object without a Key");
    return key;
  });
  if (keys.length > 1000) throw malformedXml("more than 1000 objects");
  return { quiet: child(content, "Quiet")?.trim() === "true", keys };
}

/** The LocationConstraint of a CreateBucket body, if any. */
export function parseLocationConstraint(xml: string): string | undefined {
  const content = rootContent(xml, "CreateBucketConfiguration");
  return content === undefined ? undefined : child(content, "LocationConstraint");
}
