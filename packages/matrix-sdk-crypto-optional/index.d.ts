// Only what majordome itself reads; matrix-bot-sdk's own typings are not checked (skipLibCheck).
export declare const cryptoAvailable: boolean;
export declare const unavailableReason: string | undefined;
